"""The online feature store's client: a user's and a merchant's features from Redis in one
round trip, for the scorer and for tests.

The key layout is the design's, defined here once for every writer and reader:
    user:{id}:agg:{window}   the streaming job's sliding-window aggregates (1h, 24h, 7d, 30d)
    user:{id}:profile        the batch baselines (30/90-day averages, home, ...)
    merchant:{id}            the merchant's risk and volume
Each is a hash of feature name -> value; the user's window and profile names do not overlap,
the merchant's may repeat a user's (both have an avg_amount_30d), so the two stay apart.
Values come back as floats where they parse (Redis keeps text); an entity nothing has been
written for yet (a new card) comes back empty and its keys are named in `missing`, so the
scorer can fall back on defaults instead of failing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

STREAM_WINDOWS = ("1h", "24h", "7d", "30d")
PROFILE_KEYS = {"user": "user:{}:profile", "merchant": "merchant:{}"}


def user_window_key(user_id: str, window: str) -> str:
    return f"user:{user_id}:agg:{window}"


def keys_for(user_id: str, merchant_id: str, prefix: str = "") -> list[str]:
    """The six keys one transaction's features live under, in a fixed order (`prefix`: an
    isolated instance's key space, as the streaming jobs' key_prefix)."""
    return [
        *(prefix + user_window_key(user_id, w) for w in STREAM_WINDOWS),
        prefix + PROFILE_KEYS["user"].format(user_id),
        prefix + PROFILE_KEYS["merchant"].format(merchant_id),
    ]


@dataclass(frozen=True)
class OnlineFeatures:
    user_id: str
    merchant_id: str
    user: dict[str, float | str] = field(default_factory=dict)  # windows and profile
    merchant: dict[str, float | str] = field(default_factory=dict)
    missing: tuple[str, ...] = ()  # keys that hold nothing (yet)


def _value(raw: bytes) -> float | str:
    text = raw.decode()
    try:
        return float(text)
    except ValueError:
        return text


def _decoded(mapping: dict[bytes, bytes]) -> dict[str, float | str]:
    return {name.decode(): _value(raw) for name, raw in mapping.items()}


def _features(
    user_id: str, merchant_id: str, hashes: list[dict], prefix: str = ""
) -> OnlineFeatures:
    """The six hashes of `keys_for`, in its order, as one transaction's features."""
    keys = keys_for(user_id, merchant_id, prefix)
    user: dict[str, float | str] = {}
    for mapping in hashes[:-1]:
        user.update(_decoded(mapping))
    missing = tuple(key for key, mapping in zip(keys, hashes, strict=True) if not mapping)
    return OnlineFeatures(user_id, merchant_id, user, _decoded(hashes[-1]), missing)


class FeatureStore:
    """Reads features for (user, merchant) pairs, each call one pipelined round trip."""

    def __init__(self, client: Any, prefix: str = "") -> None:
        self.client = client  # a redis.Redis
        self.prefix = prefix

    def get_features(self, user_id: str, merchant_id: str) -> OnlineFeatures:
        return self.get_many([(user_id, merchant_id)])[0]

    def get_many(self, pairs: Iterable[tuple[str, str]]) -> list[OnlineFeatures]:
        """Every pair's features in one round trip (one pipeline, no MULTI)."""
        pairs = list(pairs)
        pipe = self.client.pipeline(transaction=False)
        for user_id, merchant_id in pairs:
            for key in keys_for(user_id, merchant_id, self.prefix):
                pipe.hgetall(key)
        hashes = pipe.execute()
        per_pair = len(STREAM_WINDOWS) + 2
        return [
            _features(user_id, merchant_id, hashes[i * per_pair : (i + 1) * per_pair], self.prefix)
            for i, (user_id, merchant_id) in enumerate(pairs)
        ]
