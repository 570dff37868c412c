"""The streaming side of the platform: the Flink jobs' definitions and specs (jobs), their
control through the Flink REST API (control), and the online scorer."""
