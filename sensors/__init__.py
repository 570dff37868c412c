"""Dagster sensors and schedules: label arrival, nightly run, streaming observers, alerts."""
