"""Messages in and out of the jobs: Confluent-framed Avro (magic byte, schema id, body) with
the contracts the spec carries, and the reference data that turns a raw transaction into the
processed row the feature catalog is written against."""

from __future__ import annotations

import io
import struct
import time
from typing import Any, ClassVar

from fastavro import parse_schema, schemaless_reader, schemaless_writer

# Formats, not struct.Struct objects: the jobs' code travels pickled by value, and a Struct
# does not pickle.
HEADER = ">bI"  # magic byte, schema id
HEADER_SIZE = struct.calcsize(HEADER)


class Codec:
    """One contract: decode and encode its framed messages. Messages of the contract's older
    versions (`older`: schema by id) are read as this version, new fields at their default."""

    def __init__(self, contract: dict) -> None:
        self.id = contract["id"]
        self.schema = parse_schema(contract["schema"])
        self.header = struct.pack(HEADER, 0, self.id)
        self.writers = {self.id: (self.schema, None)}
        for schema_id, schema in contract.get("older", {}).items():
            self.writers[int(schema_id)] = (parse_schema(schema), self.schema)

    def decode(self, data: bytes) -> dict[str, Any]:
        magic, schema_id = struct.unpack_from(HEADER, data)
        if magic != 0 or schema_id not in self.writers:
            raise ValueError(f"schema id {schema_id} (magic {magic}), expected one of "
                             f"{sorted(self.writers)}")  # fmt: skip
        writer, reader = self.writers[schema_id]
        return schemaless_reader(io.BytesIO(data[HEADER_SIZE:]), writer, reader)

    def encode(self, record: dict[str, Any]) -> bytes:
        out = io.BytesIO()
        out.write(self.header)
        schemaless_writer(out, self.schema, record)
        return out.getvalue()


def _long(n: int) -> bytes:
    """Avro's long: zig-zag, then 7 bits a byte, low bits first."""
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _string(text: str) -> bytes:
    data = text.encode()
    return _long(len(data)) + data


class EnrichedCodec(Codec):
    """The enriched contract with its encoder written out.

    fastavro resolves the feature map's value union (null, double, string) value by value,
    which made encoding the enrichment step's largest cost; here each feature's key is
    encoded once and each value takes one type test. The bytes are fastavro's (tested), and a
    contract of another shape is refused rather than mis-encoded.
    """

    LAYOUT: ClassVar = [
        ("transaction_id", "string"), ("user_id", "string"), ("merchant_id", "string"),
        ("timestamp", "long"), ("features", ["null", "double", "string"]),
        ("feature_version", "string"),
    ]  # fmt: skip

    def __init__(self, contract: dict) -> None:
        super().__init__(contract)
        layout = [
            (f["name"], f["type"]["values"] if f["name"] == "features" else _type(f["type"]))
            for f in contract["schema"]["fields"]
        ]
        if layout != self.LAYOUT:
            raise ValueError(f"enriched contract {self.id} is not the layout {self.LAYOUT}")
        self.keys: dict[str, bytes] = {}

    def encode(self, record: dict[str, Any]) -> bytes:
        features = record["features"]
        out = [
            self.header,
            _string(record["transaction_id"]),
            _string(record["user_id"]),
            _string(record["merchant_id"]),
            _long(record["timestamp"]),
            _long(len(features)) if features else b"",
        ]
        keys = self.keys
        for name, value in features.items():
            key = keys.get(name) or keys.setdefault(name, _string(name))
            if value is None:
                out.append(key + b"\x00")
            elif isinstance(value, str):
                out.append(key + b"\x04" + _string(value))
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                out.append(key + b"\x02" + struct.pack("<d", value))
            else:
                raise ValueError(f"feature {name}: {value!r} is not null, a number or a string")
        out.append(b"\x00")
        out.append(_string(record["feature_version"]))
        return b"".join(out)


def _type(schema: Any) -> Any:
    return schema["type"] if isinstance(schema, dict) else schema


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
