"""The PyFlink jobs of the fraud platform (run in streaming/.venv, on the Flink cluster).

Nothing here imports fraud_platform: what the jobs need from it (the compiled feature
catalog, the Avro contracts, topic names, Redis key layout) arrives in the job's spec,
written by fraud_platform.streaming at deploy time.
"""
