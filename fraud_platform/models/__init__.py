"""Models: training sets, XGBoost training, evaluation and the registry in the lake."""
