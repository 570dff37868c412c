"""The online feature store's client on the real Redis: a transaction's user windows,
profile and merchant in one round trip, decoded, with cold-start keys named."""

import pytest

from fraud_platform.features.online import (
    PROFILE_KEYS,
    FeatureStore,
    keys_for,
    user_window_key,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def store(resources, unique):
    client = resources["redis"].client()
    yield FeatureStore(client), f"u-{unique}", f"m-{unique}"
    client.delete(*keys_for(f"u-{unique}", f"m-{unique}"), *keys_for(f"new-{unique}", "none"))


def test_a_transactions_features_come_back_decoded_and_apart(store):
    features, user, merchant = store
    client = features.client
    client.hset(user_window_key(user, "1h"), mapping={"user_transaction_count_1h": 3})
    client.hset(user_window_key(user, "24h"), mapping={"user_total_spend_24h": "412.5"})
    client.hset(PROFILE_KEYS["user"].format(user),
                mapping={"avg_amount_30d": 40.0, "home_country": "FR"})  # fmt: skip
    client.hset(PROFILE_KEYS["merchant"].format(merchant),
                mapping={"avg_amount_30d": 75.0, "risk_tier": "high"})  # fmt: skip

    found = features.get_features(user, merchant)
    assert found.user == {
        "user_transaction_count_1h": 3.0,
        "user_total_spend_24h": 412.5,
        "avg_amount_30d": 40.0,
        "home_country": "FR",
    }
    assert found.merchant == {"avg_amount_30d": 75.0, "risk_tier": "high"}  # not the user's
    assert found.missing == (user_window_key(user, "7d"), user_window_key(user, "30d"))


def test_many_pairs_in_one_call_and_a_new_card(store, unique):
    features, user, merchant = store
    features.client.hset(PROFILE_KEYS["merchant"].format(merchant), mapping={"risk_tier": "low"})
    known, new = features.get_many([(user, merchant), (f"new-{unique}", "none")])
    assert known.merchant == {"risk_tier": "low"} and known.user == {}
    assert new.user == {} and new.merchant == {}
    assert set(new.missing) == set(keys_for(f"new-{unique}", "none"))
