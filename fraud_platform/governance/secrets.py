"""Keys the platform signs with (the audit chain, card tokens), never written in code.

A key comes from its environment variable; on a machine where none is set, one is generated
once into the platform's home (`secrets/`, readable by its owner only) so a local run works
and keeps working with the same key.
"""

from __future__ import annotations

import os
import secrets as token_source

from fraud_platform.config import Settings


def signing_key(env: str, settings: Settings | None = None) -> bytes:
    """The key named by `env` (hex or text), else this machine's generated one."""
    value = os.environ.get(env, "").strip()
    if value:
        return value.encode()
    settings = settings or Settings.from_env()
    path = settings.home / "secrets" / env.lower()
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use theirs
            pass
        else:
            with os.fdopen(descriptor, "w") as out:
                out.write(token_source.token_hex(32))
    return path.read_text().strip().encode()
