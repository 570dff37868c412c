"""What the orchestrator's UI may show of the data.

Dagster keeps every materialization's and check's metadata in its event log, and its
webserver (loopback only, no login of its own: see docs/operations.md, "Security") serves it
to whoever reaches the port. So previews and check samples show no column that names or
locates a person or a card: such values are replaced by `HIDDEN`.
"""

from __future__ import annotations

from typing import Any

PERSONAL_COLUMNS = frozenset(
    ["user_id", "card_last4", "card_token", "device_id", "lat", "lon", "home_lat", "home_lon",
     "location", "actor", "target", "details"]
)  # fmt: skip
HIDDEN = "(hidden)"


def shown(column: str | None, value: Any) -> Any:
    """`value` as the UI may show it in `column`."""
    return HIDDEN if column in PERSONAL_COLUMNS else value
