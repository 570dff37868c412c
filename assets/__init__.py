"""Dagster asset modules by layer; each module exports its `defs`."""
