"""Data quality: Great Expectations suites (quality_suites/) run as Dagster asset checks."""
