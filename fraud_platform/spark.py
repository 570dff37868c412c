"""The one SparkSession of a process, built lazily on first use.

Starting a JVM costs seconds, so every Spark asset in a run (and every test in a session)
shares one session; the settings of the first caller win, later callers get the same session.
"""

from __future__ import annotations

import threading

_lock = threading.Lock()
_session = None


def get_spark(master: str = "local[2]", conf: dict[str, str] | None = None):
    global _session
    with _lock:
        if _session is None or _session.sparkContext._jsc is None:
            from pyspark.sql import SparkSession

            builder = (
                SparkSession.builder.master(master)
                .appName("fraud-platform")
                .config("spark.sql.session.timeZone", "UTC")
                .config("spark.ui.enabled", "false")
                .config("spark.sql.sources.partitionOverwriteMode", "dynamic")
                .config("spark.sql.parquet.compression.codec", "zstd")
            )
            for key, value in (conf or {}).items():
                builder = builder.config(key, value)
            _session = builder.getOrCreate()
            _session.sparkContext.setLogLevel("WARN")
        return _session


def stop_spark() -> None:
    global _session
    with _lock:
        if _session is not None:
            _session.stop()
            _session = None
