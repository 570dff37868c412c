"""Submit Flink SQL statements to the session cluster (run with streaming/.venv's Python).

Usage: python submit_sql.py FILE.sql REST_URL

DDL runs in the client; each INSERT becomes a job on the session cluster at REST_URL, and
its id is printed as `Job ID: <id>`. The stack's SQL command calls this, so SQL reaches Flink
through the same PyFlink client the streaming jobs use.
"""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import urlsplit

from pyflink.common import Configuration
from pyflink.table import EnvironmentSettings, TableEnvironment


def statements(sql: str) -> list[str]:
    """Split a script on semicolons at line ends (the SQL client's rule)."""
    parts, current = [], []
    for line in sql.splitlines():
        if line.strip().startswith("--"):
            continue
        current.append(line)
        if line.rstrip().endswith(";"):
            parts.append("\n".join(current).rstrip().rstrip(";"))
            current = []
    if "".join(current).strip():
        parts.append("\n".join(current))
    return [p for p in parts if p.strip()]


def main(path: str, rest_url: str) -> int:
    rest = urlsplit(rest_url)
    config = Configuration()
    config.set_string("execution.target", "remote")
    config.set_string("rest.address", rest.hostname or "127.0.0.1")
    config.set_string("rest.port", str(rest.port or 8081))
    settings = (
        EnvironmentSettings.new_instance().in_streaming_mode().with_configuration(config).build()
    )
    t_env = TableEnvironment.create(settings)
    for statement in statements(Path(path).read_text()):
        result = t_env.execute_sql(statement)
        client = result.get_job_client()
        if client is not None:
            print(f"Job ID: {client.get_job_id()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
