"""One simulated day of card traffic, with fraud scenarios and late, sparse labels.

Everything is drawn from generators seeded by (seed, day, stream), so a day is the same
whichever range it is generated in. Volumes follow daily and weekly rhythms. Fraud scenarios:
  1 amount_outlier        a few transactions with amounts far above anything genuine
  2 compromised_merchant  every card-present payment at a merchant compromised for 28 days
  3 compromised_card      a third of a card's payments, amounts x5, for 14 days
  4 account_takeover      a burst of online payments from a new device, far from home
  5 impossible_travel     a card-present payment in a far city minutes after one at home
(1-3 are the Fraud Detection Handbook's; 4-5 add the design's behavioural cases.) Every
fraud, and 1% of genuine payments, gets a label whose investigation completes 1 to 30 days
after the payment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from fraud_platform.lake import LABELS_SCHEMA, RAW_TRANSACTIONS_SCHEMA
from fraud_platform.simulation.reference import (
    CATEGORY_LOG_MEAN,
    CITIES,
    CITY_COUNTRY,
    CITY_CURRENCY,
    CITY_LAT,
    CITY_LON,
    World,
    card_tokens,
    merchant_ids,
    user_ids,
)

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
SCENARIOS = [
    None,
    "amount_outlier",
    "compromised_merchant",
    "compromised_card",
    "account_takeover",
    "impossible_travel",
]
HOUR_WEIGHTS = np.array(
    [0.6, 0.4, 0.3, 0.25, 0.25, 0.4, 1.0, 2.0, 3.0, 3.5, 3.8, 4.2,
     5.0, 4.8, 4.0, 3.8, 4.0, 4.6, 5.2, 5.0, 4.2, 3.2, 2.0, 1.1]
)  # fmt: skip
HOUR_P = HOUR_WEIGHTS / HOUR_WEIGHTS.sum()
WEEKDAY_FACTOR = np.array([0.95, 0.97, 1.0, 1.02, 1.12, 1.15, 0.85])  # Monday first
MAX_GENUINE_AMOUNT = 2_000.0


def distance_km(lat1, lon1, lat2, lon2):
    lat1, lon1, lat2, lon2 = map(np.radians, (lat1, lon1, lat2, lon2))
    a = (
        np.sin((lat2 - lat1) / 2) ** 2
        + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    )
    return 6371.0 * 2 * np.arcsin(np.sqrt(a))


CITY_DISTANCE = distance_km(
    CITY_LAT[:, None], CITY_LON[:, None], CITY_LAT[None, :], CITY_LON[None, :]
)
FAR_CITIES = [np.flatnonzero(CITY_DISTANCE[c] > 3000) for c in range(len(CITIES))]


def _rng(world: World, day: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([world.seed, day, stream])


def compromised_merchants(world: World, day: int) -> np.ndarray:
    """Card-present merchants compromised on `day`: one picked each day, kept for 28 days."""
    card_present = np.flatnonzero(~world.merchant_online)
    picks = [_rng(world, d, 2).choice(card_present, 1) for d in range(day - 27, day + 1)]
    return np.unique(np.concatenate(picks))


def compromised_cards(world: World, day: int) -> np.ndarray:
    """Users whose card is compromised on `day`: four picked each day, kept for 14 days."""
    picks = [_rng(world, d, 3).choice(world.n_users, 4) for d in range(day - 13, day + 1)]
    return np.unique(np.concatenate(picks))


@dataclass
class DayTraffic:
    day: int
    transactions: pa.Table  # RAW_TRANSACTIONS_SCHEMA, sorted by time
    labels: pa.Table  # LABELS_SCHEMA
    scenario: np.ndarray  # per transaction, index into SCENARIOS (0 = genuine)


def generate_day(world: World, day: int, volume: int = 100_000) -> DayTraffic:
    rng = _rng(world, day, 1)
    n = max(1, int(volume * WEEKDAY_FACTOR[(day + 3) % 7] * rng.normal(1, 0.03)))
    users = rng.choice(world.n_users, n, p=world.user_activity)
    ms = day * DAY_MS + rng.choice(24, n, p=HOUR_P) * HOUR_MS + rng.integers(0, HOUR_MS, n)
    online = rng.random(n) < 0.15
    merchants = np.empty(n, dtype=np.int64)
    city = world.user_city[users]
    for c in range(len(CITIES)):
        chosen = (city == c) & ~online
        pool = world.merchants_by_city[c]
        merchants[chosen] = pool[rng.integers(0, len(pool), chosen.sum())]
    pool = world.online_merchants
    merchants[online] = pool[rng.integers(0, len(pool), online.sum())]
    log_mean = CATEGORY_LOG_MEAN[world.merchant_category[merchants]] + world.user_log_mean[users]
    amount = np.minimum(np.exp(rng.normal(log_mean, 0.6)), MAX_GENUINE_AMOUNT)
    device_index = (rng.random(n) < 0.2).astype(int)
    scenario = np.zeros(n, dtype=np.int8)

    outlier = rng.random(n) < 0.0008
    amount[outlier] = rng.uniform(2_500, 9_500, outlier.sum())
    scenario[outlier] = 1
    at_compromised = np.isin(merchants, compromised_merchants(world, day)) & ~online
    scenario[at_compromised] = 2
    stolen = np.isin(users, compromised_cards(world, day)) & (rng.random(n) < 1 / 3)
    amount[stolen] *= 5
    scenario[stolen] = 3

    columns = {
        "users": users,
        "ms": ms,
        "merchants": merchants,
        "amount": amount,
        "online": online,
        "device_index": device_index,
        "scenario": scenario,
        "city": np.where(online, city, world.merchant_city[merchants]),
    }
    extra = [_account_takeovers(world, day), _impossible_travel(world, day, users, ms)]
    for block in extra:
        for key in columns:
            columns[key] = np.concatenate([columns[key], block[key]])
    return _assemble(world, day, columns)


def _account_takeovers(world: World, day: int) -> dict[str, np.ndarray]:
    """Three victims a day: 4 online payments within an hour, new device, far-away city."""
    rng = _rng(world, day, 4)
    victims = np.repeat(rng.choice(world.n_users, 3, replace=False), 4)
    start = day * DAY_MS + rng.integers(0, DAY_MS - HOUR_MS, 3)
    ms = np.repeat(start, 4) + rng.integers(0, HOUR_MS, 12)
    far = np.array([rng.choice(FAR_CITIES[c]) for c in world.user_city[victims]])
    pool = world.online_merchants
    return {
        "users": victims,
        "ms": ms,
        "merchants": pool[rng.integers(0, len(pool), 12)],
        "amount": np.exp(rng.normal(5.5, 0.5, 12)),
        "online": np.ones(12, dtype=bool),
        "device_index": np.full(12, -1),  # a device never seen for this user
        "scenario": np.full(12, 4, dtype=np.int8),
        "city": far,
    }


def _impossible_travel(
    world: World, day: int, users: np.ndarray, ms: np.ndarray
) -> dict[str, np.ndarray]:
    """Three a day: a card-present payment 10-50 minutes after one at home, >3000 km away."""
    rng = _rng(world, day, 5)
    anchors = rng.choice(len(users), 3, replace=False)
    victims = users[anchors]
    far = np.array([rng.choice(FAR_CITIES[c]) for c in world.user_city[victims]])
    merchants = np.array(
        [world.merchants_by_city[c][rng.integers(0, len(world.merchants_by_city[c]))] for c in far]
    )
    log_mean = CATEGORY_LOG_MEAN[world.merchant_category[merchants]] + 0.5
    return {
        "users": victims,
        "ms": np.minimum(ms[anchors] + rng.integers(10, 50, 3) * 60_000, (day + 1) * DAY_MS - 1),
        "merchants": merchants,
        "amount": np.exp(rng.normal(log_mean, 0.4)),
        "online": np.zeros(3, dtype=bool),
        "device_index": np.zeros(3, dtype=int),
        "scenario": np.full(3, 5, dtype=np.int8),
        "city": far,
    }


def _assemble(world: World, day: int, c: dict[str, np.ndarray]) -> DayTraffic:
    order = np.argsort(c["ms"], kind="stable")
    c = {k: v[order] for k, v in c.items()}
    n = len(order)
    rng = _rng(world, day, 6)
    users, merchants, online, fraud = c["users"], c["merchants"], c["online"], c["scenario"] > 0
    takeover = c["scenario"] == 4  # shows the fraudster's whereabouts, not the card holder's
    online_lat = np.where(
        takeover, CITY_LAT[c["city"]] + rng.normal(0, 0.1, n), world.user_lat[users]
    )
    online_lon = np.where(
        takeover, CITY_LON[c["city"]] + rng.normal(0, 0.1, n), world.user_lon[users]
    )
    lat = np.where(online, online_lat, world.merchant_lat[merchants])
    lon = np.where(online, online_lon, world.merchant_lon[merchants])
    stamp = np.datetime64(day, "D").astype(str).replace("-", "")
    transaction_ids = [f"sim{world.seed}-{stamp}-{i:07d}" for i in range(n)]
    user_strings = user_ids(users)
    device_ids = [
        f"pos_{m:06d}" if not o else (f"ato_{day}_{u}" if k < 0 else f"dev_{u:06d}_{k}")
        for m, o, u, k in zip(
            merchants.tolist(),
            online.tolist(),
            users.tolist(),
            c["device_index"].tolist(),
            strict=True,
        )
    ]
    mobile = rng.random(n) < 0.6
    transactions = pa.table(
        {
            "transaction_id": transaction_ids,
            "user_id": user_strings,
            "merchant_id": merchant_ids(merchants),
            "amount": np.round(c["amount"], 2),
            "currency": CITY_CURRENCY[c["city"]],
            "timestamp": pa.array(c["ms"], pa.timestamp("ms", tz="UTC")),
            "lat": lat.round(5),
            "lon": lon.round(5),
            "country": CITY_COUNTRY[c["city"]],
            "device": np.where(online, np.where(mobile, "mobile", "desktop"), "pos_terminal"),
            "device_id": device_ids,
            "channel": np.where(online, "online", "card_present"),
            "card_last4": [f"{x:04d}" for x in world.user_last4[users].tolist()],
            "card_token": card_tokens(world)[users],
            "declined": rng.random(n) < np.where(fraud, 0.1, 0.015),
            "source_partition": pa.nulls(n, pa.int32()),
            "source_offset": pa.nulls(n, pa.int64()),
        },
        schema=RAW_TRANSACTIONS_SCHEMA,
    )
    labelled = np.flatnonzero(fraud | (rng.random(n) < 0.01))
    delay = rng.uniform(1, 30, len(labelled)) * DAY_MS
    labels = pa.table(
        {
            "transaction_id": [transaction_ids[i] for i in labelled],
            "is_fraud": fraud[labelled],
            "transaction_time": pa.array(c["ms"][labelled], pa.timestamp("ms", tz="UTC")),
            "investigation_complete_time": pa.array(
                (c["ms"][labelled] + delay).astype(np.int64), pa.timestamp("ms", tz="UTC")
            ),
            "fraud_type": [SCENARIOS[s] for s in c["scenario"][labelled]],
            "confidence": np.where(
                fraud[labelled], rng.choice(["high", "medium"], len(labelled), p=[0.7, 0.3]), "high"
            ),
            "source_partition": pa.nulls(len(labelled), pa.int32()),
            "source_offset": pa.nulls(len(labelled), pa.int64()),
        },
        schema=LABELS_SCHEMA,
    )
    return DayTraffic(day, transactions, labels, c["scenario"])
