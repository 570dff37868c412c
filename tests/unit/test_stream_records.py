"""The jobs' codecs: the enrichment's written-out encoder produces fastavro's bytes for the
enriched contract, so every reader of transactions-enriched decodes it as before; the raw
codec reads every version of the transaction contract as the latest."""

import copy
import json
import random

import pytest
from fraud_streaming.records import Codec, EnrichedCodec

from fraud_platform.contracts import ENRICHED_TRANSACTION, TRANSACTION
from fraud_platform.contracts.registry import versions
from fraud_platform.features.stream import enriched_feature_names
from fraud_platform.streaming.jobs import contract_spec

CONTRACT = {"id": ENRICHED_TRANSACTION.schema_id, "schema": ENRICHED_TRANSACTION.wire_schema}


def random_record(rng: random.Random) -> dict:
    values = [None, 0, 1, -3, 2**40, 0.0, -1.5, 1e300, float("inf"), 12.34, "", "é-cat"]
    names = rng.sample(enriched_feature_names(), rng.randrange(0, 12))
    return {
        "transaction_id": f"tx-{rng.randrange(10**9)}-ü",
        "user_id": f"u{rng.randrange(5000)}",
        "merchant_id": "m" * rng.randrange(0, 200),
        "timestamp": rng.choice([0, 1, -1, 1_750_000_000_123, 2**62, -(2**62)]),
        "features": {name: rng.choice(values) for name in names},
        "feature_version": rng.choice(["v1", "v2-long-version"]),
    }


def test_the_encoder_writes_fastavros_bytes():
    rng = random.Random(5)
    fast, reference = EnrichedCodec(CONTRACT), Codec(CONTRACT)
    for _ in range(2_000):
        record = random_record(rng)
        assert fast.encode(record) == reference.encode(record), record
        decoded = ENRICHED_TRANSACTION.decode(fast.encode(record))
        assert decoded["features"].keys() == record["features"].keys()


def test_a_contract_of_another_shape_is_refused():
    changed = copy.deepcopy(CONTRACT)
    changed["schema"]["fields"][4]["type"]["values"] = ["null", "double"]
    with pytest.raises(ValueError, match="not the layout"):
        EnrichedCodec(changed)


@pytest.mark.parametrize("value", [True, [1.0], b"bytes"], ids=["bool", "list", "bytes"])
def test_a_value_fastavro_refuses_is_refused_with_its_feature(value):
    record = random_record(random.Random(1)) | {"features": {"amount": value}}
    with pytest.raises(ValueError):
        Codec(CONTRACT).encode(record)
    with pytest.raises(ValueError, match="feature amount"):
        EnrichedCodec(CONTRACT).encode(record)


def test_the_raw_codec_reads_a_producer_still_on_the_older_version():
    codec = Codec(json.loads(json.dumps(contract_spec(TRANSACTION))))  # as the spec file has it
    v1 = versions("transaction")[0]
    old = codec.decode(v1.encode({"transaction_id": "t-1", "card_last4": "1111"}))
    assert old["transaction_id"] == "t-1" and old["card_token"] is None
    new = codec.decode(TRANSACTION.encode({"transaction_id": "t-2", "card_token": "k" * 52}))
    assert new["card_token"] == "k" * 52
    with pytest.raises(ValueError, match=f"schema id {ENRICHED_TRANSACTION.schema_id} "):
        codec.decode(ENRICHED_TRANSACTION.encode(random_record(random.Random(1))))
