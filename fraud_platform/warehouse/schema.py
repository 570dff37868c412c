"""The design's star schema, written once in SQL both backends (DuckDB, Snowflake) accept.

Facts are keyed by their event's id and carry the date key of the day they belong to; the
dimensions are keyed by their entity's id, the date dimension by `yyyymmdd`. Column names
avoid words either dialect reserves (`date`, `timestamp`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Table:
    """A warehouse table: (name, SQL type) columns, the key a load merges on."""

    name: str
    columns: tuple[tuple[str, str], ...]
    key: tuple[str, ...]
    description: str

    @property
    def column_names(self) -> list[str]:
        return [name for name, _ in self.columns]

    def ddl(self) -> str:
        columns = ",\n  ".join(f"{name} {sql_type}" for name, sql_type in self.columns)
        return (
            f"CREATE TABLE IF NOT EXISTS {self.name} (\n  {columns},\n"
            f"  PRIMARY KEY ({', '.join(self.key)})\n)"
        )


TRANSACTIONS_FACT = Table(
    "transactions_fact",
    (
        ("transaction_id", "VARCHAR"),
        ("user_id", "VARCHAR"),
        ("merchant_id", "VARCHAR"),
        ("date_id", "INTEGER"),
        ("transaction_time", "TIMESTAMP"),
        ("amount", "DOUBLE"),
        ("currency", "VARCHAR"),
        ("country", "VARCHAR"),
        ("channel", "VARCHAR"),
        ("card_last4", "VARCHAR"),
        ("card_token", "VARCHAR"),  # the card's keyed token: a card followed, never its number
        ("declined", "BOOLEAN"),
        ("is_fraud", "BOOLEAN"),  # null until the label has matured
        ("fraud_type", "VARCHAR"),
        ("labelled_at", "TIMESTAMP"),
    ),
    ("transaction_id",),
    "One row per accepted transaction, with its matured fraud label once known.",
)
MODEL_PREDICTIONS_FACT = Table(
    "model_predictions_fact",
    (
        ("prediction_id", "VARCHAR"),
        ("transaction_id", "VARCHAR"),
        ("date_id", "INTEGER"),
        ("predicted_at", "TIMESTAMP"),
        ("fraud_probability", "DOUBLE"),
        ("decision", "VARCHAR"),
        ("model_version", "VARCHAR"),
        ("prediction_latency_ms", "DOUBLE"),
    ),
    ("prediction_id",),
    "One row per online prediction (a re-scored transaction keeps its prediction id).",
)
USERS_DIMENSION = Table(
    "users_dimension",
    (
        ("user_id", "VARCHAR"),
        ("account_type", "VARCHAR"),
        ("kyc_status", "VARCHAR"),
        ("registration_date", "DATE"),
        ("home_country", "VARCHAR"),
        ("home_lat", "DOUBLE"),
        ("home_lon", "DOUBLE"),
    ),
    ("user_id",),
    "The card holders, from the lake's reference users.",
)
MERCHANTS_DIMENSION = Table(
    "merchants_dimension",
    (
        ("merchant_id", "VARCHAR"),
        ("name", "VARCHAR"),
        ("category", "VARCHAR"),
        ("country", "VARCHAR"),
        ("lat", "DOUBLE"),
        ("lon", "DOUBLE"),
        ("risk_tier", "VARCHAR"),
    ),
    ("merchant_id",),
    "The merchants, from the lake's reference merchants.",
)
DATE_DIMENSION = Table(
    "date_dimension",
    (
        ("date_id", "INTEGER"),
        ("calendar_date", "DATE"),
        ("year", "INTEGER"),
        ("month", "INTEGER"),
        ("day", "INTEGER"),
        ("day_of_week", "INTEGER"),  # ISO: Monday 1 .. Sunday 7
        ("is_weekend", "BOOLEAN"),
        ("is_holiday", "BOOLEAN"),
    ),
    ("date_id",),
    "One row per calendar day.",
)
DAILY_BUSINESS_METRICS = Table(
    "daily_business_metrics",
    (
        ("date_id", "INTEGER"),
        ("transactions", "BIGINT"),
        ("amount_total", "DOUBLE"),
        ("predictions", "BIGINT"),
        ("reviewed", "BIGINT"),
        ("declined_by_model", "BIGINT"),
        ("review_rate", "DOUBLE"),
        ("labelled_fraud", "BIGINT"),
        ("fraud_caught", "BIGINT"),  # labelled fraud the model sent to review or declined
        ("fraud_caught_rate", "DOUBLE"),
        ("flagged_precision", "DOUBLE"),  # share of flagged, labelled transactions that were fraud
    ),
    ("date_id",),
    "Per day: volume, the model's review and decline rates, fraud caught.",
)
STAR_SCHEMA = (
    TRANSACTIONS_FACT,
    MODEL_PREDICTIONS_FACT,
    USERS_DIMENSION,
    MERCHANTS_DIMENSION,
    DATE_DIMENSION,
    DAILY_BUSINESS_METRICS,
)
AUDIT_LOG = Table(
    "audit_log",
    (
        ("seq", "BIGINT"),
        ("recorded_at", "TIMESTAMP"),
        ("actor", "VARCHAR"),
        ("role", "VARCHAR"),
        ("action", "VARCHAR"),
        ("target", "VARCHAR"),
        ("outcome", "VARCHAR"),
        ("details", "VARCHAR"),  # JSON
        ("previous", "VARCHAR"),
        ("hash", "VARCHAR"),
    ),
    ("seq",),
    "The platform's hash-chained audit log, for search (fraud_platform/governance/audit.py).",
)
TABLES = (*STAR_SCHEMA, AUDIT_LOG)


def create_tables(connection, tables: tuple[Table, ...] = TABLES) -> None:
    """Create the tables that do not exist yet, and add the columns a later version of the
    schema brought to tables that do (a warehouse is upgraded in place, never rebuilt)."""
    cursor = connection.cursor()
    for table in tables:
        cursor.execute(table.ddl())
        cursor.execute(f"SELECT * FROM {table.name} LIMIT 0")
        present = {column[0].lower() for column in cursor.description}
        for name, sql_type in table.columns:
            if name not in present:
                cursor.execute(f"ALTER TABLE {table.name} ADD COLUMN {name} {sql_type}")
