"""After a Redis restore: the windows of entities with events since the snapshot are rebuilt
from the lake, and a hash the running job wrote as of a later instant is kept."""

import time
from collections import defaultdict

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import redis

from fraud_platform.lake import RAW_TRANSACTIONS, RAW_TRANSACTIONS_SCHEMA, transaction_row
from fraud_platform.recovery.aggregates import rebuild_aggregates
from fraud_platform.resources import LakeResource

from .ingestion_support import transaction

pytestmark = pytest.mark.integration
MINUTE_MS = 60_000


def write_raw(lake_root, records: list[dict]) -> None:
    """Raw transactions into the lake's hourly partitions, as the archiver lays them out."""
    by_dir = defaultdict(list)
    for record in records:
        by_dir[RAW_TRANSACTIONS.partition_dir(record["timestamp"])].append(transaction_row(record))
    for directory, rows in by_dir.items():
        folder = lake_root / directory
        folder.mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(rows, RAW_TRANSACTIONS_SCHEMA), folder / "part.parquet")


def test_windows_with_events_since_the_snapshot_are_rebuilt_and_newer_ones_kept(
    stack, settings, tmp_path, unique
):
    snapshot_ms = int(time.time() * 1000) - 10 * MINUTE_MS
    tx = lambda i, at, user, merchant, amount: transaction(  # noqa: E731
        i, 0, unique, user_id=user, merchant_id=merchant, amount=amount,
        timestamp=snapshot_ms + at, device_id="phone",
    )  # fmt: skip
    records = [
        tx(1, -120 * MINUTE_MS, "ana", "shop", 10.0),
        tx(2, -90 * MINUTE_MS, "ana", "shop", 20.0),
        tx(3, 1 * MINUTE_MS, "ana", "cafe", 30.0),  # the gap: after the snapshot
        tx(4, 2 * MINUTE_MS, "ana", "shop", 40.0),
        tx(5, -3 * 24 * 60 * MINUTE_MS, "bob", "kiosk", 50.0),  # nothing since: untouched
    ]
    write_raw(tmp_path / "lake", records)
    client = redis.Redis.from_url(settings.redis_url)
    prefix = f"{unique}:"
    # As the snapshot had it: ana's day as of her second transaction.
    client.hset(f"{prefix}user:ana:agg:24h",
                mapping={"as_of_ms": snapshot_ms - 90 * MINUTE_MS,
                         "user_transaction_count_24h": 2})  # fmt: skip
    # Written by the running job since the restore, as of a later instant than the lake has.
    cafe = {"as_of_ms": snapshot_ms + 5 * MINUTE_MS, "merchant_transaction_volume_24h": 99}
    client.hset(f"{prefix}merchant:cafe", mapping=cafe)

    result = rebuild_aggregates(client, LakeResource(root=str(tmp_path / "lake")), snapshot_ms,
                                settings, key_prefix=prefix)  # fmt: skip

    assert result.entities == {"user": 1, "merchant": 2}
    assert result.transactions_read == 4  # ana's and her merchants' 30 days; not bob's
    day = client.hgetall(f"{prefix}user:ana:agg:24h")
    assert int(day[b"as_of_ms"]) == snapshot_ms + 2 * MINUTE_MS
    assert float(day[b"user_transaction_count_24h"]) == 4
    assert float(day[b"user_total_spend_24h"]) == 100.0
    hour = client.hgetall(f"{prefix}user:ana:agg:1h")
    assert float(hour[b"user_transaction_count_1h"]) == 2  # 30 and 40
    assert float(hour[b"user_max_amount_1h"]) == 40.0
    assert float(hour[b"user_distinct_merchants_1h"]) == 2
    assert 0 < client.pttl(f"{prefix}user:ana:agg:1h") <= 60 * MINUTE_MS
    shop = client.hgetall(f"{prefix}merchant:shop")
    assert int(shop[b"as_of_ms"]) == snapshot_ms + 2 * MINUTE_MS
    assert float(shop[b"merchant_unique_customers_24h"]) == 1
    assert client.hgetall(f"{prefix}merchant:cafe")[b"merchant_transaction_volume_24h"] == b"99"
    assert result.kept == 1  # the cafe's newer hash
    assert result.written == 4 + 1  # ana's four windows, the shop
    assert not client.exists(f"{prefix}user:bob:agg:24h", f"{prefix}merchant:kiosk")
