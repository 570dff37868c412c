"""Reference data of the simulated world: cities, users and merchants, fixed by the seed."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from fraud_platform.governance.pci import KEY_ENV, card_token, luhn_sum, signing_key
from fraud_platform.lake import MERCHANTS_SCHEMA, USERS_SCHEMA

# name, lat, lon, country, currency, population weight
CITIES = [
    ("New York", 40.71, -74.01, "US", "USD", 8),
    ("Chicago", 41.88, -87.63, "US", "USD", 3),
    ("San Francisco", 37.77, -122.42, "US", "USD", 2),
    ("London", 51.51, -0.13, "GB", "GBP", 7),
    ("Paris", 48.86, 2.35, "FR", "EUR", 6),
    ("Berlin", 52.52, 13.40, "DE", "EUR", 4),
    ("Madrid", 40.42, -3.70, "ES", "EUR", 3),
    ("Amsterdam", 52.37, 4.90, "NL", "EUR", 2),
    ("Toronto", 43.65, -79.38, "CA", "CAD", 3),
    ("Sydney", -33.87, 151.21, "AU", "AUD", 2),
    ("Tokyo", 35.68, 139.69, "JP", "JPY", 3),
    ("Singapore", 1.35, 103.82, "SG", "SGD", 2),
]
CITY_LAT = np.array([c[1] for c in CITIES])
CITY_LON = np.array([c[2] for c in CITIES])
CITY_COUNTRY = np.array([c[3] for c in CITIES])
CITY_CURRENCY = np.array([c[4] for c in CITIES])
CITY_WEIGHT = np.array([c[5] for c in CITIES], dtype=float) / sum(c[5] for c in CITIES)

# category, share of merchants, log-mean amount, online share
CATEGORIES = [
    ("grocery", 0.22, 3.4, 0.05),
    ("restaurant", 0.20, 3.3, 0.02),
    ("fuel", 0.08, 3.9, 0.0),
    ("pharmacy", 0.06, 3.2, 0.05),
    ("clothing", 0.10, 4.2, 0.35),
    ("electronics", 0.07, 5.0, 0.45),
    ("travel", 0.05, 5.6, 0.6),
    ("entertainment", 0.08, 3.6, 0.3),
    ("online_retail", 0.10, 4.0, 1.0),
    ("jewelry", 0.02, 5.5, 0.2),
    ("gambling", 0.02, 4.5, 0.8),
]
CATEGORY_NAMES = np.array([c[0] for c in CATEGORIES])
CATEGORY_SHARE = np.array([c[1] for c in CATEGORIES]) / sum(c[1] for c in CATEGORIES)
CATEGORY_LOG_MEAN = np.array([c[2] for c in CATEGORIES])
CATEGORY_ONLINE = np.array([c[3] for c in CATEGORIES])
HIGH_RISK_CATEGORIES = {"gambling", "jewelry", "electronics", "travel"}


@dataclass
class World:
    """Users and merchants as column arrays (index = id number)."""

    seed: int
    user_city: np.ndarray
    user_lat: np.ndarray
    user_lon: np.ndarray
    user_activity: np.ndarray  # share of daily transactions
    user_log_mean: np.ndarray  # personal spending level
    user_last4: np.ndarray
    user_account: np.ndarray
    user_kyc: np.ndarray
    user_registered: np.ndarray  # days since epoch
    merchant_city: np.ndarray
    merchant_lat: np.ndarray
    merchant_lon: np.ndarray
    merchant_category: np.ndarray  # index into CATEGORIES
    merchant_online: np.ndarray
    merchant_risk: np.ndarray
    merchants_by_city: list[np.ndarray]  # card-present merchants of each city
    online_merchants: np.ndarray
    # The users' card tokens by signing key: every simulated day needs them, made once.
    card_tokens: dict[bytes, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    @property
    def n_users(self) -> int:
        return len(self.user_city)

    @property
    def n_merchants(self) -> int:
        return len(self.merchant_city)


def user_ids(index: np.ndarray) -> list[str]:
    return [f"user_{i:06d}" for i in index.tolist()]


def merchant_ids(index: np.ndarray) -> list[str]:
    return [f"merch_{i:06d}" for i in index.tolist()]


def card_numbers(world: World) -> list[str]:
    """Each user's card: 16 digits, a Visa prefix, the user's last 4, Luhn-valid, made up from
    the seed (a stream of its own, so the world's other draws are unchanged). The simulation
    stands for the card holders' banks, the one place full numbers exist: they are tokenized
    here (`card_tokens`) and never leave."""
    middle = np.random.default_rng([world.seed, 7]).integers(0, 10, (world.n_users, 10))
    numbers = []
    for digits, last4 in zip(middle.tolist(), world.user_last4.tolist(), strict=True):
        head, tail = [4, *digits], [int(d) for d in f"{last4:04d}"]
        # The 12th of 16 digits is not doubled by Luhn: it alone makes the sum a multiple of 10.
        rest = "".join(map(str, [*head, 0, *tail]))
        check = (10 - luhn_sum(rest) % 10) % 10
        numbers.append(rest[:11] + str(check) + rest[12:])
    return numbers


def card_tokens(world: World) -> np.ndarray:
    """The keyed token of each user's card (FRAUD_CARD_TOKEN_KEY), by user index."""
    key = signing_key(KEY_ENV)
    if key not in world.card_tokens:
        numbers = card_numbers(world)
        world.card_tokens[key] = np.array([card_token(number, key) for number in numbers])
    return world.card_tokens[key]


def build_world(seed: int, n_users: int = 5_000, n_merchants: int = 10_000) -> World:
    rng = np.random.default_rng([seed, 0])
    user_city = rng.choice(len(CITIES), n_users, p=CITY_WEIGHT)
    merchant_city = rng.choice(len(CITIES), n_merchants, p=CITY_WEIGHT)
    category = rng.choice(len(CATEGORIES), n_merchants, p=CATEGORY_SHARE)
    online = rng.random(n_merchants) < CATEGORY_ONLINE[category]
    risky = np.isin(CATEGORY_NAMES[category], list(HIGH_RISK_CATEGORIES))
    risk = np.where(risky, rng.choice(["medium", "high"], n_merchants, p=[0.6, 0.4]), "low")
    risk = np.where(~risky & (rng.random(n_merchants) < 0.1), "medium", risk)
    # About 20 km of spread around a city centre, in degrees.
    jitter = lambda n: rng.normal(0, 0.15, n)  # noqa: E731
    activity = rng.lognormal(0, 0.8, n_users)
    world = World(
        seed=seed,
        user_city=user_city,
        user_lat=CITY_LAT[user_city] + jitter(n_users),
        user_lon=CITY_LON[user_city] + jitter(n_users),
        user_activity=activity / activity.sum(),
        user_log_mean=rng.normal(0, 0.35, n_users),
        user_last4=rng.integers(0, 10_000, n_users),
        user_account=rng.choice(["personal", "business", "premium"], n_users, p=[0.8, 0.12, 0.08]),
        user_kyc=rng.choice(["verified", "pending", "unverified"], n_users, p=[0.9, 0.07, 0.03]),
        user_registered=rng.integers(15_000, 19_700, n_users),  # 2011 .. 2023
        merchant_city=merchant_city,
        merchant_lat=CITY_LAT[merchant_city] + jitter(n_merchants),
        merchant_lon=CITY_LON[merchant_city] + jitter(n_merchants),
        merchant_category=category,
        merchant_online=online,
        merchant_risk=risk,
        merchants_by_city=[
            np.flatnonzero((merchant_city == c) & ~online) for c in range(len(CITIES))
        ],
        online_merchants=np.flatnonzero(online),
    )
    return world


def users_table(world: World) -> pa.Table:
    n = np.arange(world.n_users)
    return pa.table(
        {
            "user_id": user_ids(n),
            "home_lat": world.user_lat.round(5),
            "home_lon": world.user_lon.round(5),
            "home_country": CITY_COUNTRY[world.user_city],
            "account_type": world.user_account,
            "kyc_status": world.user_kyc,
            "registration_date": pa.array(world.user_registered.astype("int32"), pa.date32()),
        },
        schema=USERS_SCHEMA,
    )


def merchants_table(world: World) -> pa.Table:
    n = np.arange(world.n_merchants)
    category = CATEGORY_NAMES[world.merchant_category]
    return pa.table(
        {
            "merchant_id": merchant_ids(n),
            "name": [f"{c.replace('_', ' ').title()} #{i}" for i, c in enumerate(category)],
            "category": category,
            "lat": world.merchant_lat.round(5),
            "lon": world.merchant_lon.round(5),
            "country": CITY_COUNTRY[world.merchant_city],
            "risk_tier": world.merchant_risk,
        },
        schema=MERCHANTS_SCHEMA,
    )
