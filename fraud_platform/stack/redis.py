"""Redis from Debian's redis-server: the online feature store, persisted with AOF and RDB."""

from __future__ import annotations

from fraud_platform.config import LOOPBACK
from fraud_platform.stack.prerequisites import require_binary
from fraud_platform.stack.service import Service


class RedisService(Service):
    name = "redis"
    start_timeout = 30.0

    @property
    def ports(self) -> dict[str, int]:
        return {"FRAUD_REDIS_PORT": self.settings.ports.redis}

    @property
    def config_file(self):
        return self.dir / "redis.conf"

    def prepare(self) -> None:
        self.binary = require_binary("redis-server", "redis-server")
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        # AOF with an fsync every second bounds the loss on a crash to about one second of
        # writes; the RDB snapshot every 5 minutes is the fast-restore copy (design: Tier 1).
        self.config_file.write_text(
            "\n".join(
                [
                    f"bind {LOOPBACK}",
                    f"port {self.settings.ports.redis}",
                    "protected-mode yes",
                    "daemonize no",
                    'logfile ""',
                    f"dir {self.dir / 'data'}",
                    "appendonly yes",
                    "appendfsync everysec",
                    'appenddirname "appendonly"',
                    "save 300 1",
                    "dbfilename dump.rdb",
                    # Plain strings in snapshots: the card-number scan and the erasure's byte
                    # search read them (LZF would hide a number inside a compressed run).
                    "rdbcompression no",
                    "maxmemory-policy noeviction",
                    "",
                ]
            )
        )

    def command(self) -> list[str]:
        return [self.binary, str(self.config_file)]

    def healthy(self) -> bool:
        import redis

        try:
            client = redis.Redis(
                host=LOOPBACK,
                port=self.settings.ports.redis,
                socket_timeout=1,
                socket_connect_timeout=1,
            )
            return bool(client.ping())
        except redis.RedisError:
            return False
