"""The model registry in the lake: candidates, the production pointer, promotion history.

    models/candidates/{version}/model.json     XGBoost model
    models/candidates/{version}/metadata.json  training partitions, features, params, code
                                               version, metrics
    models/current                             {"version": ...}: what the scorer serves
    models/promotions.jsonl                    every promotion and rollback, appended
    models/selection/{as_of}.json              a hyperparameter search (every grid point)
    models/selection/latest.json               the search whose choice candidates train with

A pointer file instead of a symlink works the same on a local lake and on S3.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from typing import Any

from fraud_platform.config import PROJECT_ROOT
from fraud_platform.lake import read_json, write_atomically

CANDIDATES = "models/candidates"
# Per version: evaluation.json, roc.png, pr.png, and the frames layer 5 validates.
EVALUATIONS = "analytics/model_performance"
SCORES_FILE = "scores.parquet"  # label, score (candidate), production_score on the holdout
IMPORTANCE_FILE = "importance.parquet"  # feature, importance (share of the total gain)
CURRENT = "models/current"
HISTORY = "models/promotions.jsonl"
SELECTIONS = "models/selection"


class RegistryError(RuntimeError):
    """A registry operation that cannot be done; the text says why."""


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10, check=True
    ).stdout.strip()


def code_version() -> str:
    """The git commit of the code that trains, with a mark when the tree has local changes."""
    try:
        dirty = "+dirty" if _git("status", "--porcelain") else ""
        return f"{_git('rev-parse', '--short', 'HEAD')}{dirty}"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def save_candidate(lake, version: str, model_json: bytes, metadata: dict[str, Any]) -> str:
    filesystem, base = lake.filesystem()
    folder = f"{base}/{CANDIDATES}/{version}"
    write_atomically(filesystem, f"{folder}/model.json", model_json)
    write_atomically(filesystem, f"{folder}/metadata.json", json.dumps(metadata, indent=2).encode())
    return lake.uri(CANDIDATES, version)


def load_metadata(lake, version: str) -> dict[str, Any]:
    filesystem, base = lake.filesystem()
    metadata = read_json(filesystem, f"{base}/{CANDIDATES}/{version}/metadata.json")
    if metadata is None:
        raise RegistryError(f"no model {version!r} under {lake.uri(CANDIDATES)}")
    return metadata


def load_booster(lake, version: str):
    import xgboost as xgb

    filesystem, base = lake.filesystem()
    with filesystem.open_input_stream(f"{base}/{CANDIDATES}/{version}/model.json") as f:
        data = f.read()
    booster = xgb.Booster()
    booster.load_model(bytearray(data))
    return booster


def latest_candidate(lake, as_of: str) -> str | None:
    """The most recently trained candidate for `as_of` (versions start with the date)."""
    from pyarrow.fs import FileSelector, FileType

    filesystem, base = lake.filesystem()
    selector = FileSelector(f"{base}/{CANDIDATES}", allow_not_found=True)
    found = [
        info
        for info in filesystem.get_file_info(selector)
        if info.type == FileType.Directory and info.base_name.startswith(as_of)
    ]
    return max(found, key=lambda info: info.mtime).base_name if found else None


def evaluation_report(lake, version: str) -> dict[str, Any] | None:
    """The evaluation.json models/evaluation wrote for `version`, None before it ran."""
    filesystem, base = lake.filesystem()
    return read_json(filesystem, f"{base}/{EVALUATIONS}/{version}/evaluation.json")


def evaluation_frame(lake, as_of: str, name: str):
    """One of the frames the evaluation wrote for the latest candidate of `as_of`."""
    import pyarrow.parquet as pq

    version = latest_candidate(lake, as_of)
    if version is None:
        raise RegistryError(f"no candidate model trained as of {as_of}")
    filesystem, base = lake.filesystem()
    path = f"{base}/{EVALUATIONS}/{version}/{name}"
    try:
        return pq.read_table(path, filesystem=filesystem).to_pandas()
    except FileNotFoundError as missing:
        raise RegistryError(f"{version} has no {name}: materialize models/evaluation") from missing


def save_selection(lake, as_of: str, record: dict[str, Any]) -> str:
    """Keep a hyperparameter search and make its choice the one candidates train with."""
    filesystem, base = lake.filesystem()
    data = json.dumps({"as_of": as_of, **record}, indent=2).encode()
    write_atomically(filesystem, f"{base}/{SELECTIONS}/{as_of}.json", data)
    write_atomically(filesystem, f"{base}/{SELECTIONS}/latest.json", data)
    return lake.uri(SELECTIONS, f"{as_of}.json")


def latest_selection(lake) -> dict[str, Any] | None:
    """The search in force (see save_selection), or None before any."""
    filesystem, base = lake.filesystem()
    return read_json(filesystem, f"{base}/{SELECTIONS}/latest.json")


def current_version(lake) -> str | None:
    filesystem, base = lake.filesystem()
    pointer = read_json(filesystem, f"{base}/{CURRENT}")
    return None if pointer is None else pointer["version"]


def history(lake) -> list[dict[str, Any]]:
    filesystem, base = lake.filesystem()
    try:
        with filesystem.open_input_stream(f"{base}/{HISTORY}") as f:
            return [json.loads(line) for line in f.read().decode().splitlines() if line]
    except FileNotFoundError:
        return []


def _point(lake, action: str, version: str, previous: str | None, reason: str) -> None:
    """Move models/current to `version` and append the move to the history, if the acting
    role may deploy to production (the architect's right); audited either way."""
    from fraud_platform.governance import audit
    from fraud_platform.governance.rbac import Right, require

    actor = require(Right.DEPLOY_PRODUCTION, f"model.{action}", version)
    filesystem, base = lake.filesystem()
    write_atomically(filesystem, f"{base}/{CURRENT}", json.dumps({"version": version}).encode())
    event = {
        "action": action,
        "version": version,
        "previous": previous,
        "reason": reason,
        "at": datetime.now(UTC).isoformat(),
        "by": f"{actor.user} ({actor.role})",
    }
    lines = [json.dumps(e) for e in [*history(lake), event]]
    write_atomically(filesystem, f"{base}/{HISTORY}", ("\n".join(lines) + "\n").encode())
    audit.record(f"model.{action}", version, {"previous": previous, "reason": reason}, actor=actor)


def promote(lake, version: str, reason: str) -> None:
    """Point models/current at `version` and record why."""
    load_metadata(lake, version)  # it must exist
    _point(lake, "promote", version, current_version(lake), reason)


def rollback(lake) -> str:
    """Point models/current back at the version it replaced; returns that version."""
    current = current_version(lake)
    promotions = [e for e in history(lake) if e["action"] in ("promote", "rollback")]
    if current is None or not promotions or promotions[-1]["version"] != current:
        raise RegistryError("nothing to roll back: no promotion led to the current model")
    previous = promotions[-1]["previous"]
    if previous is None:
        raise RegistryError(f"{current} was the first production model: nothing before it")
    _point(lake, "rollback", previous, current, "manual rollback")
    return previous
