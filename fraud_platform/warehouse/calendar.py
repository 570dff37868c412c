"""The date dimension: one row per day, with the public holidays of a configured country
(fraud and spending patterns shift on holidays, so analysts slice by them)."""

from __future__ import annotations

from datetime import date, timedelta

import holidays
import pyarrow as pa


def date_id(day: date) -> int:
    """The date dimension's key of a day: yyyymmdd."""
    return day.year * 10_000 + day.month * 100 + day.day


def date_rows(first: date, last: date, country: str) -> pa.Table:
    """The date dimension's rows from `first` to `last` inclusive."""
    if last < first:
        raise ValueError(f"the date range ends ({last}) before it starts ({first})")
    try:
        calendar = holidays.country_holidays(country, years=range(first.year, last.year + 1))
    except NotImplementedError:
        raise ValueError(f"no holiday calendar for country {country!r}") from None
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    return pa.Table.from_pylist([
        {
            "date_id": date_id(day), "calendar_date": day, "year": day.year,
            "month": day.month, "day": day.day, "day_of_week": day.isoweekday(),
            "is_weekend": day.isoweekday() >= 6, "is_holiday": day in calendar,
        }
        for day in days
    ])  # fmt: skip
