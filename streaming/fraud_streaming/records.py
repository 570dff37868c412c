"""Messages in and out of the jobs: Confluent-framed Avro (magic byte, schema id, body) with
the contracts the spec carries, and the reference data that turns a raw transaction into the
processed row the feature catalog is written against."""

from __future__ import annotations

import io
import struct
import time
from typing import Any, ClassVar

from fastavro import parse_schema, schemaless_reader, schemaless_writer

HEADER = struct.Struct(">bI")


class Codec:
    """One contract: decode and encode its framed messages."""

    def __init__(self, contract: dict) -> None:
        self.id = contract["id"]
        self.schema = parse_schema(contract["schema"])
        self.header = HEADER.pack(0, self.id)

    def decode(self, data: bytes) -> dict[str, Any]:
        magic, schema_id = HEADER.unpack_from(data)
        if magic != 0 or schema_id != self.id:
            raise ValueError(f"schema id {schema_id} (magic {magic}), expected {self.id}")
        return schemaless_reader(io.BytesIO(data[HEADER.size :]), self.schema, None)

    def encode(self, record: dict[str, Any]) -> bytes:
        out = io.BytesIO()
        out.write(self.header)
        schemaless_writer(out, self.schema, record)
        return out.getvalue()


class Reference:
    """Users and merchants from the lake's reference tables, reloaded every `refresh_s` so a
    newly registered merchant is known without a restart. Unknown ids give nulls, as the
    batch's left joins do."""

    USER_COLUMNS: ClassVar = ("home_lat", "home_lon", "home_country", "account_type", "kyc_status")
    MERCHANT_COLUMNS: ClassVar = {
        "category": "merchant_category",
        "risk_tier": "merchant_risk_tier",
        "country": "merchant_country",
    }

    def __init__(self, spec: dict, refresh_s: float = 60.0) -> None:
        self.spec = spec
        self.refresh_s = refresh_s
        self.users: dict[str, dict] = {}
        self.merchants: dict[str, dict] = {}
        self.loaded_at = float("-inf")

    def _table(self, uri: str, key: str) -> dict[str, dict]:
        import pyarrow.dataset as ds
        from pyarrow import fs

        filesystem, path = fs.FileSystem.from_uri(uri)
        if filesystem.get_file_info(path).type == fs.FileType.NotFound:
            return {}
        rows = ds.dataset(path, filesystem=filesystem, format="parquet").to_table().to_pylist()
        return {row[key]: row for row in rows}

    def refresh(self) -> None:
        if time.monotonic() - self.loaded_at < self.refresh_s:
            return
        self.users = self._table(self.spec["users"], "user_id")
        self.merchants = self._table(self.spec["merchants"], "merchant_id")
        self.loaded_at = time.monotonic()

    def processed(self, record: dict[str, Any]) -> dict[str, Any]:
        """A transaction message as the batch's processed row (location flattened, ts_ms,
        the user's home and the merchant's attributes joined)."""
        self.refresh()
        row = dict(record)
        location = row.pop("location", None) or {}
        row["lat"], row["lon"] = location.get("lat"), location.get("lon")
        row["ts_ms"] = row["timestamp"]
        user = self.users.get(row["user_id"], {})
        row.update({c: user.get(c) for c in self.USER_COLUMNS})
        merchant = self.merchants.get(row["merchant_id"], {})
        row.update({ours: merchant.get(theirs) for theirs, ours in self.MERCHANT_COLUMNS.items()})
        return row
