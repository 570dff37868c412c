"""Layer 2: the entry point the streaming job calls on each window of scored transactions.

The job hands over the window's rows (a transaction with its online features, named as in
the catalog); the streaming suite validates them and a failure goes out as an alert. The
window is never held back: streaming quality informs, the batch layers block.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from fraud_platform.alerts import Alert, Alerter
from fraud_platform.quality.runner import Outcome, validate
from fraud_platform.quality.suites import check_named

SUITE = "streaming/window_features"


def validate_window(
    rows: Iterable[Mapping[str, Any]] | pd.DataFrame,
    window: str,
    alerter: Alerter | None = None,
    **parameters: Any,
) -> Outcome:
    """Validate one window (`window` names it in the alert, e.g. its end time); alerts when an
    expectation fails. `parameters` override checks.yaml's thresholds for this call."""
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    check = check_named(SUITE)
    outcome = validate(frame, check, **parameters)
    if not outcome.success:
        (alerter or Alerter.from_env()).send(
            Alert(
                source=f"quality/{check.name}",
                severity=check.severity,
                title=f"window {window}: {len(outcome.failures)} expectation(s) failed",
                detail="\n".join(f.summary() for f in outcome.failures),
            )
        )
    return outcome
