"""Online feature fetch: the platform's `FeatureStore.get_features` against bare redis-py
HGETALLs of the same six keys (pipelined, undecoded), same Redis and keys, in one run.

    uv run python benchmarks/streaming/bench_feature_fetch.py [--users 10000] [--calls 20000]

Fills Redis with `--users` users (four window hashes and a profile each) and as many
merchants, then times `--calls` single-transaction fetches each way, interleaved so both see
the same machine. Prints P50, P95 and P99 in milliseconds and the ratio at each. Starts Redis
when it is not running, and stops what it started.
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np
from rich.console import Console
from rich.progress import track

from fraud_platform.config import Settings
from fraud_platform.features.catalog import CATALOG
from fraud_platform.features.online import (
    PROFILE_KEYS,
    STREAM_WINDOWS,
    FeatureStore,
    keys_for,
    user_window_key,
)
from fraud_platform.stack.manager import Stack

console = Console()
PREFIX = "bench"


def fill(client, users: int) -> None:
    """Hashes shaped like the real ones: the catalog's window features, a profile, a merchant."""
    by_window = {w: [f.name for f in CATALOG if f.entity == "user" and f.window == w]
                 for w in STREAM_WINDOWS}  # fmt: skip
    rng = random.Random(3)
    pipe = client.pipeline(transaction=False)
    for i in track(range(users), description="filling Redis", console=console):
        user, merchant = f"{PREFIX}-u{i}", f"{PREFIX}-m{i}"
        for window, names in by_window.items():
            pipe.hset(user_window_key(user, window),
                      mapping={n: round(rng.random() * 100, 2) for n in names})  # fmt: skip
        pipe.hset(PROFILE_KEYS["user"].format(user),
                  mapping={"avg_amount_30d": 42.5, "std_amount_90d": 10.1,
                           "transaction_count_90d": 180, "home_country": "FR"})  # fmt: skip
        pipe.hset(PROFILE_KEYS["merchant"].format(merchant),
                  mapping={"risk_tier": "low", "avg_amount_30d": 61.0,
                           "transaction_volume_30d": 9000})  # fmt: skip
        if i % 500 == 499:
            pipe.execute()
    pipe.execute()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()

    settings = Settings.from_env()
    stack = Stack(settings)
    started = [r.name for r in stack.up(["redis"]) if r.action == "started"]
    try:
        import redis

        client = redis.Redis.from_url(settings.redis_url.rsplit("/", 1)[0] + "/13")
        client.flushdb()
        fill(client, args.users)
        store = FeatureStore(client)
        rng = random.Random(7)
        platform, bare = [], []
        for _ in track(range(args.calls), description="fetching", console=console):
            i = rng.randrange(args.users)
            user, merchant = f"{PREFIX}-u{i}", f"{PREFIX}-m{i}"
            began = time.perf_counter()
            store.get_features(user, merchant)
            platform.append(time.perf_counter() - began)
            began = time.perf_counter()
            pipe = client.pipeline(transaction=False)
            for key in keys_for(user, merchant):
                pipe.hgetall(key)
            pipe.execute()
            bare.append(time.perf_counter() - began)
        client.flushdb()
    finally:
        stack.down(started)

    for q in (50, 95, 99):
        ours, floor = np.percentile(platform, q) * 1000, np.percentile(bare, q) * 1000
        console.print(
            f"P{q}: get_features {ours:.3f} ms, bare HGETALL x6 {floor:.3f} ms, "
            f"ratio {ours / floor:.2f}"
        )


if __name__ == "__main__":
    main()
