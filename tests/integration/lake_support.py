"""Lake contents the tests need beyond what the simulator writes."""

import random

import pyarrow as pa
import pyarrow.dataset as ds

from fraud_platform.lake import PREDICTIONS, PREDICTIONS_SCHEMA, parquet_bytes, write_atomically
from fraud_platform.resources import LakeResource


def write_predictions(lake: LakeResource, day: str) -> pa.Table:
    """A prediction for every transaction of `day`, as the archiver writes them."""
    transactions = ds.dataset(f"{lake.root}/raw/transactions/date={day}", format="parquet")
    rows = transactions.to_table(columns=["transaction_id", "timestamp"]).to_pylist()
    rng = random.Random(7)
    predictions = pa.Table.from_pylist(
        [
            {"prediction_id": f"p-{r['transaction_id']}", "transaction_id": r["transaction_id"],
             "fraud_probability": p, "decision": "decline" if p >= 0.9 else
             "review" if p >= 0.5 else "approve", "model_version": "v1",
             "features_used": "{}", "prediction_latency_ms": 4.0, "timestamp": r["timestamp"],
             "source_partition": 0, "source_offset": i}
            for i, r in enumerate(rows) for p in [rng.random()]
        ],
        PREDICTIONS_SCHEMA,
    )  # fmt: skip
    filesystem, base = lake.filesystem()
    millis = int(rows[0]["timestamp"].timestamp() * 1000)
    path = f"{base}/{PREDICTIONS.partition_dir(millis)}/part-test.parquet"
    write_atomically(filesystem, path, parquet_bytes(predictions))
    return predictions
