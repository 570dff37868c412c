"""Backward compatibility of schema versions: can the new version read the old one's data?

Implements Avro's schema-resolution rules for the constructs the contracts use (records,
unions, enums, maps, arrays, primitives with promotion). `fraud-platform contracts check`
and the tests run it over every pair of consecutive versions.
"""

from __future__ import annotations

import itertools
from typing import Any

from fraud_platform.contracts.registry import CONTRACTS, versions

PROMOTIONS = {
    "int": {"int", "long", "float", "double"},
    "long": {"long", "float", "double"},
    "float": {"float", "double"},
    "string": {"string", "bytes"},
    "bytes": {"bytes", "string"},
}


def _kind(schema: Any) -> str:
    if isinstance(schema, list):
        return "union"
    if isinstance(schema, dict):
        return schema["type"] if isinstance(schema["type"], str) else _kind(schema["type"])
    return schema


def _named(schema: Any) -> str | None:
    return schema.get("name") if isinstance(schema, dict) else None


def problems(writer: Any, reader: Any, path: str = "") -> list[str]:
    """Why `reader` cannot read data written with `writer` (empty when it can)."""
    w, r = _kind(writer), _kind(reader)
    where = path or "<root>"
    if w == "union":
        return [p for branch in writer for p in problems(branch, reader, path)]
    if r == "union":
        if any(not problems(writer, branch, path) for branch in reader):
            return []
        return [f"{where}: writer type {w} matches no branch of the reader's union"]
    if w in PROMOTIONS or w in {"null", "boolean", "double"}:
        allowed = PROMOTIONS.get(w, {w})
        return [] if r in allowed else [f"{where}: {w} cannot be read as {r}"]
    if w != r:
        return [f"{where}: {w} cannot be read as {r}"]
    if w == "record":
        return _record_problems(writer, reader, where)
    if w == "enum":
        missing = set(writer["symbols"]) - set(reader["symbols"])
        if missing and "default" not in reader:
            return [f"{where}: enum symbols {sorted(missing)} removed without a default"]
        return []
    if w == "map":
        return problems(writer["values"], reader["values"], f"{where}.<values>")
    if w == "array":
        return problems(writer["items"], reader["items"], f"{where}.<items>")
    return []


def _record_problems(writer: dict, reader: dict, where: str) -> list[str]:
    found = []
    if _named(writer) != _named(reader):
        found.append(f"{where}: record {_named(writer)} renamed to {_named(reader)}")
    written = {f["name"]: f for f in writer["fields"]}
    for field in reader["fields"]:
        path = f"{where}.{field['name']}" if where != "<root>" else field["name"]
        if field["name"] in written:
            found += problems(written[field["name"]]["type"], field["type"], path)
        elif "default" not in field:
            found.append(f"{path}: new field without a default")
    return found


def check_all() -> list[str]:
    """Problems across every pair of consecutive versions of every contract."""
    found = []
    for name in sorted({c.name for c in CONTRACTS.values()}):
        for old, new in itertools.pairwise(versions(name)):
            found += [
                f"{name} v{new.version} cannot read v{old.version}: {p}"
                for p in problems(old.schema, new.schema)
            ]
    return found
