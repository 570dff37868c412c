"""The feature catalog: every model feature declared once.

The batch SQL (fraud_platform.features.sql, for Spark and DuckDB) is generated from these
declarations, and the streaming jobs generate their Flink SQL from the same ones, so training
and serving compute the same thing.

Point-in-time rule: a transaction's features see only events strictly before it (earlier
millisecond timestamps; events in the same millisecond do not see each other), and a
label-based feature counts a label only if its investigation completed strictly before the
transaction.

Label delay: fraud labels arrive days after their transaction (the Fraud Detection Handbook
assumes 7), so a window over the last days would count frauds that are not known yet and
read as "no fraud". Label-based features, and the volumes they are divided by, use windows
shifted back by the label delay: [t - delay - w, t - delay), the Handbook's definition of a
terminal's risk. The delay is a setting (FRAUD_LABEL_DELAY_DAYS); the point-in-time rule
still applies inside the shifted window, so a label later than the delay is not counted.

Column names available to expressions (the processed-transactions table): transaction_id,
user_id, merchant_id, amount, currency, timestamp, ts_ms (epoch ms), lat, lon, country,
device_id, channel, declined, home_lat, home_lon, merchant_category, merchant_risk_tier;
sequential helpers computed per user before aggregation: prev_ts_ms, device_changed (0/1).
Entities: transaction (its own row), user, merchant, and pair (the user at this merchant).
"""

from __future__ import annotations

from dataclasses import dataclass

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
WINDOWS_MS = {
    "1h": HOUR_MS,
    "24h": DAY_MS,
    "7d": 7 * DAY_MS,
    "30d": 30 * DAY_MS,
    "90d": 90 * DAY_MS,
}
LONGEST_WINDOW_DAYS = 90
LABEL_DELAY_DAYS = 7  # the default label delay (FRAUD_LABEL_DELAY_DAYS)
LONGEST_LABEL_WINDOW_DAYS = 30  # of the delayed windows
KEYS = {"user": "user_id", "merchant": "merchant_id", "pair": "user_id, merchant_id"}


def history_days(label_delay_days: int = LABEL_DELAY_DAYS) -> int:
    """Days of history before a transaction that its features can read."""
    return max(LONGEST_WINDOW_DAYS, label_delay_days + LONGEST_LABEL_WINDOW_DAYS)


@dataclass(frozen=True)
class Feature:
    """One feature.

    kind "row": `expression` over the transaction's own (processed) row.
    kind "window": `aggregate` over `value` for the entity's events in the window before it
      (`delayed`: the window shifted back by the label delay).
    kind "label": the entity's frauds in the delayed window whose label was known before the
      transaction: their COUNT, or the seconds since the FIRST or LAST of them.
    kind "derived": `expression` over other features of the same transaction.
    """

    name: str
    dtype: str  # SQL type: DOUBLE, BIGINT, STRING
    entity: str  # transaction, user, merchant
    kind: str
    description: str
    expression: str = ""
    aggregate: str = ""  # COUNT, SUM, AVG, MAX, COUNT_DISTINCT, STDDEV_POP; FIRST, LAST
    value: str = ""
    window: str = ""
    delayed: bool = False

    @property
    def window_ms(self) -> int:
        return WINDOWS_MS[self.window]

    @property
    def key(self) -> str:
        return KEYS[self.entity]

    @property
    def shifted(self) -> bool:
        """Its window ends the label delay before the transaction."""
        return self.delayed or self.kind == "label"


def _row(name: str, dtype: str, expression: str, description: str) -> Feature:
    return Feature(name, dtype, "transaction", "row", description, expression=expression)


ROW_FEATURES = [
    _row("amount", "DOUBLE", "amount", "Transaction amount."),
    # From epoch milliseconds, so every engine computes them alike (UTC; 1970-01-01 was a
    # Thursday, day 5 counting from Sunday = 1).
    _row("hour_of_day", "BIGINT", f"FLOOR(ts_ms / {HOUR_MS}) % 24", "Hour of the day (UTC), 0-23."),
    _row(
        "day_of_week",
        "BIGINT",
        f"(FLOOR(ts_ms / {DAY_MS}) + 4) % 7 + 1",
        "Day of the week (UTC), 1 = Sunday ... 7 = Saturday.",
    ),
    _row(
        "distance_from_home_km",
        "DOUBLE",
        "2 * 6371.0 * ASIN(SQRT(POWER(SIN(RADIANS(lat - home_lat) / 2), 2)"
        " + COS(RADIANS(home_lat)) * COS(RADIANS(lat))"
        " * POWER(SIN(RADIANS(lon - home_lon) / 2), 2)))",
        "Great-circle distance between the transaction and the user's home; null if unknown.",
    ),
    _row(
        "seconds_since_last_transaction",
        "DOUBLE",
        "(ts_ms - prev_ts_ms) / 1000.0",
        "Seconds since the user's previous transaction; null for the first one.",
    ),
    _row("merchant_category", "STRING", "merchant_category", "Merchant category."),
    _row("merchant_risk_tier", "STRING", "merchant_risk_tier", "Merchant risk tier."),
    _row("is_online", "BIGINT", "CASE WHEN channel = 'online' THEN 1 ELSE 0 END", "Online."),
]

# (name, aggregate, value, description) of the per-user window aggregates of the design.
_USER_AGGREGATES = [
    ("transaction_count", "COUNT", "1", "Transactions"),
    ("total_spend", "SUM", "amount", "Total amount"),
    ("avg_amount", "AVG", "amount", "Average amount"),
    ("max_amount", "MAX", "amount", "Largest amount"),
    ("distinct_merchants", "COUNT_DISTINCT", "merchant_id", "Distinct merchants"),
    ("distinct_countries", "COUNT_DISTINCT", "country", "Distinct countries"),
    ("declined_count", "SUM", "CASE WHEN declined THEN 1 ELSE 0 END", "Declined transactions"),
    ("device_change_count", "SUM", "device_changed", "Switches to another device"),
]
_MERCHANT_AGGREGATES = [
    ("transaction_volume", "COUNT", "1", "Transactions"),
    ("unique_customers", "COUNT_DISTINCT", "user_id", "Distinct customers"),
]
_TYPES = {"COUNT": "BIGINT", "COUNT_DISTINCT": "BIGINT", "SUM": "DOUBLE"}

USER_WINDOW_FEATURES = [
    Feature(
        f"user_{name}_{window}",
        _TYPES.get(agg, "DOUBLE"),
        "user",
        "window",
        f"{text} of the user in the {window} before the transaction.",
        aggregate=agg,
        value=value,
        window=window,
    )
    for window in ("1h", "24h", "7d", "30d")
    for name, agg, value, text in _USER_AGGREGATES
]
USER_BASELINE_FEATURES = [
    Feature(
        "user_avg_amount_90d",
        "DOUBLE",
        "user",
        "window",
        "Average amount of the user in the 90 days before the transaction (baseline).",
        aggregate="AVG",
        value="amount",
        window="90d",
    ),
    Feature(
        "user_transaction_count_90d",
        "BIGINT",
        "user",
        "window",
        "Transactions of the user in the 90 days before the transaction (baseline).",
        aggregate="COUNT",
        value="1",
        window="90d",
    ),
    Feature(
        "user_std_amount_90d",
        "DOUBLE",
        "user",
        "window",
        "Spread (population standard deviation) of the user's amounts in the 90 days before.",
        aggregate="STDDEV_POP",
        value="amount",
        window="90d",
    ),
]
PAIR_WINDOW_FEATURES = [
    Feature(
        f"user_merchant_count_{window}",
        "BIGINT",
        "pair",
        "window",
        f"The user's transactions at this merchant in the {window} before (0: a new merchant "
        "for the card).",
        aggregate="COUNT",
        value="1",
        window=window,
    )
    for window in ("30d", "90d")
]
MERCHANT_WINDOW_FEATURES = [
    Feature(
        f"merchant_{name}_{window}",
        _TYPES.get(agg, "DOUBLE"),
        "merchant",
        "window",
        f"{text} of the merchant in the {window} before the transaction.",
        aggregate=agg,
        value=value,
        window=window,
    )
    for window in ("24h", "7d", "30d")
    for name, agg, value, text in _MERCHANT_AGGREGATES
]
LABEL_WINDOWS = ("24h", "7d", "30d")
DELAYED_VOLUME_FEATURES = [
    Feature(
        f"merchant_delayed_volume_{window}",
        "BIGINT",
        "merchant",
        "window",
        f"The merchant's transactions in the {window} ending a label delay before the "
        "transaction (the period its fraud risk is measured on).",
        aggregate="COUNT",
        value="1",
        window=window,
        delayed=True,
    )
    for window in LABEL_WINDOWS
]
LABEL_FEATURES = [
    *[
        Feature(
            f"merchant_fraud_count_{window}",
            "BIGINT",
            "merchant",
            "label",
            f"Known frauds among the merchant's transactions of the {window} ending a label "
            "delay before the transaction.",
            aggregate="COUNT",
            window=window,
        )
        for window in LABEL_WINDOWS
    ],
    Feature(
        "seconds_since_merchant_first_fraud",
        "DOUBLE",
        "merchant",
        "label",
        "Seconds since the earliest known fraud at the merchant in the 30 days ending a label "
        "delay before (how long a compromise has lasted); null without one.",
        aggregate="FIRST",
        window="30d",
    ),
    Feature(
        "seconds_since_merchant_last_fraud",
        "DOUBLE",
        "merchant",
        "label",
        "Seconds since the latest known fraud at the merchant in the 30 days ending a label "
        "delay before; null without one.",
        aggregate="LAST",
        window="30d",
    ),
    Feature(
        "user_fraud_count_30d",
        "BIGINT",
        "user",
        "label",
        "The card's own known frauds in the 30 days ending a label delay before.",
        aggregate="COUNT",
        window="30d",
    ),
]
# Derived from the above in the same pass (they need no window of their own).
DERIVED_FEATURES = [
    Feature(
        "amount_to_user_avg_30d",
        "DOUBLE",
        "transaction",
        "derived",
        "Amount over the user's 30-day average amount (1.0 = usual); null without history.",
        expression="amount / NULLIF(user_avg_amount_30d, 0)",
    ),
    Feature(
        "amount_to_user_avg_90d",
        "DOUBLE",
        "transaction",
        "derived",
        "Amount over the user's 90-day average amount; null without history.",
        expression="amount / NULLIF(user_avg_amount_90d, 0)",
    ),
    Feature(
        "amount_zscore_90d",
        "DOUBLE",
        "transaction",
        "derived",
        "Standard deviations between the amount and the user's 90-day average.",
        expression="(amount - user_avg_amount_90d) / NULLIF(user_std_amount_90d, 0)",
    ),
    Feature(
        "amount_to_user_max_30d",
        "DOUBLE",
        "transaction",
        "derived",
        "Amount over the user's largest amount of the 30 days before.",
        expression="amount / NULLIF(user_max_amount_30d, 0)",
    ),
    *[
        Feature(
            f"merchant_fraud_risk_{w}",
            "DOUBLE",
            "merchant",
            "derived",
            f"The merchant's known fraud share in the {w} ending a label delay before (the "
            "Handbook's terminal risk); null when it had no transaction then.",
            expression=f"merchant_fraud_count_{w} / NULLIF(merchant_delayed_volume_{w}, 0)",
        )
        for w in LABEL_WINDOWS
    ],
]

CATALOG: list[Feature] = [
    *ROW_FEATURES,
    *USER_WINDOW_FEATURES,
    *USER_BASELINE_FEATURES,
    *PAIR_WINDOW_FEATURES,
    *MERCHANT_WINDOW_FEATURES,
    *DELAYED_VOLUME_FEATURES,
    *LABEL_FEATURES,
    *DERIVED_FEATURES,
]
BY_NAME = {f.name: f for f in CATALOG}
MODEL_FEATURES = [f.name for f in CATALOG if f.dtype != "STRING"]
CATEGORICAL_FEATURES = [f.name for f in CATALOG if f.dtype == "STRING"]


@dataclass(frozen=True)
class ProfileField:
    """A field of an entity profile in Redis (`user:{id}:profile`, `merchant:{id}`), computed
    by the nightly aggregates over the entity's processed transactions up to the day's end."""

    name: str
    window: str
    aggregate: str  # AVG, STDDEV_POP, COUNT, COUNT_DISTINCT
    value: str  # SQL over a processed row (known_fraud: a fraud label known by then)
    description: str


USER_PROFILE = [
    ProfileField("avg_amount_30d", "30d", "AVG", "amount", "Average amount, 30 days."),
    ProfileField("avg_amount_90d", "90d", "AVG", "amount", "Average amount, 90 days."),
    ProfileField("std_amount_90d", "90d", "STDDEV_POP", "amount", "Amount spread, 90 days."),
    ProfileField("transaction_count_30d", "30d", "COUNT", "1", "Transactions, 30 days."),
    ProfileField("transaction_count_90d", "90d", "COUNT", "1", "Transactions, 90 days."),
    ProfileField("distinct_merchants_30d", "30d", "COUNT_DISTINCT", "merchant_id", "Merchants."),
    ProfileField("distinct_countries_90d", "90d", "COUNT_DISTINCT", "country", "Countries."),
]
MERCHANT_PROFILE = [
    ProfileField("transaction_volume_30d", "30d", "COUNT", "1", "Transactions, 30 days."),
    ProfileField("unique_customers_30d", "30d", "COUNT_DISTINCT", "user_id", "Customers."),
    ProfileField("avg_amount_30d", "30d", "AVG", "amount", "Average amount, 30 days."),
    ProfileField(
        "fraud_rate_90d",
        "90d",
        "AVG",
        "CASE WHEN known_fraud THEN 1.0 ELSE 0.0 END",
        "Share of transactions with a fraud label known by the day's end, 90 days.",
    ),
]
