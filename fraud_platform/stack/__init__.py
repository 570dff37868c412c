"""The local stack: Redis, Kafka, Flink and Dagster as managed processes on loopback."""
