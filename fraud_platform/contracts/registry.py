"""Loads the schemas and frames messages with their schema id."""

from __future__ import annotations

import io
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
MAGIC = 0
HEADER = struct.Struct(">bI")


class ContractError(ValueError):
    """A message that does not decode under its contract; the text says why."""


def _without_logical_types(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _without_logical_types(v) for k, v in schema.items() if k != "logicalType"}
    if isinstance(schema, list):
        return [_without_logical_types(s) for s in schema]
    return schema


@dataclass(frozen=True)
class Contract:
    name: str
    version: int
    schema_id: int
    schema: dict[str, Any] = field(repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_parsed", parse_schema(_without_logical_types(self.schema)))

    @property
    def wire_schema(self) -> dict[str, Any]:
        """The schema as the wire has it (timestamps as epoch-millisecond longs)."""
        return _without_logical_types(self.schema)

    @property
    def field_names(self) -> list[str]:
        return [f["name"] for f in self.schema["fields"]]

    def encode(self, record: dict[str, Any]) -> bytes:
        out = io.BytesIO()
        out.write(HEADER.pack(MAGIC, self.schema_id))
        schemaless_writer(out, self._parsed, record)
        return out.getvalue()

    def decode_body(self, data: bytes, offset: int = HEADER.size,
                    reader: Contract | None = None) -> dict[str, Any]:  # fmt: skip
        """The record after the header, as written; with `reader` (a later version of this
        contract), as that version reads it: Avro's resolution gives new fields their default."""
        buffer = io.BytesIO(data)
        buffer.seek(offset)
        try:
            record = schemaless_reader(buffer, self._parsed, reader and reader._parsed)
        except Exception as error:  # fastavro raises EOFError, ValueError, UnicodeError...
            raise ContractError(
                f"body does not decode as {self.name} v{self.version}: "
                f"{type(error).__name__}: {error}"
            ) from None
        if buffer.tell() != len(data):
            raise ContractError(
                f"{len(data) - buffer.tell()} bytes left after a {self.name} v{self.version} "
                "record: not written with this schema"
            )
        return record

    def decode(self, data: bytes) -> dict[str, Any]:
        """A message of this contract, whichever version wrote it, as this version reads it:
        consumers see one shape while producers move from one version to the next."""
        writer = writer_of(data)
        if writer.name != self.name:
            raise ContractError(f"expected a {self.name} message, got {writer.name}")
        return writer.decode_body(data, reader=None if writer is self else self)


def _load() -> dict[int, Contract]:
    registry = json.loads((SCHEMA_DIR / "registry.json").read_text())["schemas"]
    contracts = {}
    for schema_id, stem in registry.items():
        name, version = stem.rsplit(".v", 1)
        schema = json.loads((SCHEMA_DIR / f"{stem}.avsc").read_text())
        contracts[int(schema_id)] = Contract(name, int(version), int(schema_id), schema)
    return contracts


CONTRACTS: dict[int, Contract] = _load()


def versions(name: str) -> list[Contract]:
    """Every registered version of a contract, oldest first."""
    found = sorted((c for c in CONTRACTS.values() if c.name == name), key=lambda c: c.version)
    if not found:
        raise KeyError(f"no contract named {name!r}")
    return found


def latest(name: str) -> Contract:
    return versions(name)[-1]


def writer_of(data: bytes) -> Contract:
    """The registered contract a framed message names in its header."""
    if len(data) < HEADER.size:
        raise ContractError(f"{len(data)} bytes: too short for the 5-byte schema header")
    magic, schema_id = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise ContractError(f"magic byte is {magic}, not {MAGIC}: not a framed Avro message")
    contract = CONTRACTS.get(schema_id)
    if contract is None:
        raise ContractError(f"schema id {schema_id} is not registered")
    return contract


def decode_any(data: bytes) -> tuple[Contract, dict[str, Any]]:
    """Decode a framed message under whichever registered schema wrote it."""
    contract = writer_of(data)
    return contract, contract.decode_body(data)


TRANSACTION = latest("transaction")
ENRICHED_TRANSACTION = latest("enriched_transaction")
FRAUD_LABEL = latest("fraud_label")
MODEL_PREDICTION = latest("model_prediction")
DEAD_LETTER = latest("dead_letter")
