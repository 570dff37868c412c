"""Data quality: the five layers' Great Expectations suites (quality_suites/) run as Dagster
asset checks and by the streaming job, the custom expectations GX lacks, the daily dashboard."""
