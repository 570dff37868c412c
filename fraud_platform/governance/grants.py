"""Who holds which role: the grants file, which an administrator writes and its holders cannot.

The acting user is the operating system's account of the process (its uid, never an
environment variable). Its role comes from the grants file (FRAUD_ROLES_FILE, by default
`governance/roles.json` under the platform's home): `{"users": {"alice": "analyst"},
"default": "analyst"}`. The file is the administrator's: the account that owns it (or root)
is the only one that may change it (`fraud-platform rbac grant`), and a file others can write
is refused outright, so no holder can raise its own role. FRAUD_ROLE only narrows: it may
name a role whose rights are a subset of the granted one's (the architect acting as a data
engineer), never more.

Without a grants file the install has one user, who owns it and is its administrator: that
account holds every role, acts as a data engineer by default, and names another with
FRAUD_ROLE. A shared deployment writes the file (root-owned, mode 644) to take that away.
"""

from __future__ import annotations

import json
import os
import pwd
import stat
from dataclasses import dataclass, field
from pathlib import Path

from fraud_platform.config import Settings

OWNER_ROLE = "ml_architect"  # what the owner of an install without a grants file holds


class GrantsError(ValueError):
    """The grants file cannot be trusted or changed; the text says why."""


def os_user() -> str:
    """The process's account, from its uid: USER and LOGNAME can be set to anything."""
    return pwd.getpwuid(os.getuid()).pw_name


@dataclass(frozen=True)
class Grants:
    path: Path
    users: dict[str, str] = field(default_factory=dict)
    default: str | None = None
    owner: int | None = None  # uid of the file's owner; None: no file

    def role_of(self, user: str) -> str | None:
        """The user's role: as granted, else the default; the administrator holds every
        role unless the file says otherwise."""
        if user in self.users:
            return self.users[user]
        if self.owner is None or user == _name(self.owner):
            return OWNER_ROLE
        return self.default

    def may_change(self) -> bool:
        """The administrator: the file's owner or root; anyone, while there is no file (the
        first grant makes its writer the administrator)."""
        return self.owner is None or os.getuid() in (0, self.owner)


def _name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # an account removed since
        return f"uid {uid}"


def grants_path(settings: Settings | None = None) -> Path:
    return Path((settings or Settings.from_env()).roles_file)


def load(path: Path | None = None) -> Grants:
    path = path or grants_path()
    try:
        info = path.stat()
    except FileNotFoundError:
        return Grants(path)
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise GrantsError(
            f"the grants file {path} can be written by others than its owner, so it cannot "
            f"say who holds which role; its administrator must run `chmod 644 {path}`"
        )
    try:
        document = json.loads(path.read_text())
        users, default = dict(document.get("users", {})), document.get("default")
    except (ValueError, AttributeError) as error:
        raise GrantsError(f"the grants file {path} is not valid: {error}") from error
    return Grants(path, users, default, info.st_uid)


def grant(user: str, role: str | None, path: Path | None = None) -> Grants:
    """Give `user` `role` (None: take it away), as the administrator; written atomically."""
    current = load(path)
    if not current.may_change():
        owner = _name(current.owner)
        raise GrantsError(f"only {owner}, who owns {current.path}, may change the grants")
    users = {k: v for k, v in current.users.items() if k != user}
    if role is not None:
        users[user] = role
    current.path.parent.mkdir(parents=True, exist_ok=True)
    temporary = current.path.with_suffix(".tmp")
    temporary.write_text(json.dumps({"users": users, "default": current.default}, indent=2))
    temporary.chmod(0o644)
    temporary.replace(current.path)
    return load(current.path)
