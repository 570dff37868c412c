"""Spark batch transformations behind the Dagster assets."""
