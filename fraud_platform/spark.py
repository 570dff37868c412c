"""The one SparkSession of a process, built lazily on first use.

Starting a JVM costs seconds, so every Spark asset in a run (and every test in a session)
shares one session; the settings of the first caller win, later callers get the same session.
Hadoop filesystem settings (the S3A endpoint and credentials of the lake) are the exception:
Hadoop reads them when a filesystem is first opened, so each caller's are applied to the live
session too.

The S3A filesystem's jars (stack/maven/spark-s3.pom.xml) are always on the session's
classpath, so the same session reads and writes a local lake or one at `s3://bucket/prefix`.
"""

from __future__ import annotations

import os
import threading

_lock = threading.Lock()
_session = None

# Hadoop S3A settings taken from the environment, where the AWS tools keep them too.
_S3A_CREDENTIALS = {
    "fs.s3a.access.key": "AWS_ACCESS_KEY_ID",
    "fs.s3a.secret.key": "AWS_SECRET_ACCESS_KEY",
}


def s3a_jars() -> list[str]:
    """The hadoop-aws jar and the AWS SDK modules it needs, from Maven Central once."""
    from fraud_platform.config import Settings
    from fraud_platform.stack.prerequisites import STACK_DIR, resolve_jars

    jars = resolve_jars(
        STACK_DIR / "maven" / "spark-s3.pom.xml",
        Settings.from_env().home / "jars" / "spark-s3",
        transitive=True,
        what="Spark S3A",
    )
    return [str(jar) for jar in jars]


def s3a_conf(endpoint_url: str = "", region: str = "us-east-1") -> dict[str, str]:
    """Hadoop settings for a lake on S3: AWS itself, or an S3-compatible endpoint (moto,
    MinIO), which takes path-style addressing. Credentials come from the environment."""
    conf = {"fs.s3a.endpoint.region": region}
    if endpoint_url:
        conf |= {
            "fs.s3a.endpoint": endpoint_url,
            "fs.s3a.path.style.access": "true",
            "fs.s3a.connection.ssl.enabled": str(endpoint_url.startswith("https")).lower(),
        }
    conf |= {key: os.environ[env] for key, env in _S3A_CREDENTIALS.items() if os.environ.get(env)}
    return conf


def get_spark(
    master: str = "local[2]",
    conf: dict[str, str] | None = None,
    hadoop_conf: dict[str, str] | None = None,
):
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
                .config("spark.sql.execution.arrow.pyspark.enabled", "true")
                .config("spark.jars", ",".join(s3a_jars()))
            )
            for key, value in (conf or {}).items():
                builder = builder.config(key, value)
            _session = builder.getOrCreate()
            _session.sparkContext.setLogLevel("WARN")
        live = _session.sparkContext._jsc.hadoopConfiguration()
        for key, value in (hadoop_conf or {}).items():
            live.set(key, value)
        return _session


def stop_spark() -> None:
    global _session
    with _lock:
        if _session is not None:
            _session.stop()
            _session = None
