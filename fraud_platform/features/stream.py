"""The feature catalog compiled for the streaming jobs.

The Flink jobs run Python operators in their own environment (streaming/), so the catalog's
SQL expressions are translated here, at deploy time, into Python expressions over a row dict,
and shipped to the jobs inside their spec. Nothing about a feature is written twice: a new
catalog entry reaches Spark, DuckDB and the stream from the same declaration, and an
expression the translator does not know fails the deploy instead of computing something else.

Null semantics follow SQL: the jobs evaluate each expression so that an arithmetic on a
missing value, a division by zero or a domain error gives None, as NULL propagates in SQL.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import sqlglot
from sqlglot import exp

from fraud_platform.features.catalog import (
    CATALOG,
    DAY_MS,
    DERIVED_FEATURES,
    LABEL_DELAY_DAYS,
    MERCHANT_WINDOW_FEATURES,
    ROW_FEATURES,
    Feature,
)
from fraud_platform.features.online import STREAM_WINDOWS

_BINARY = {
    exp.Add: "+",
    exp.Sub: "-",
    exp.Mul: "*",
    exp.Div: "/",
    exp.Mod: "%",
    exp.EQ: "==",
    exp.NEQ: "!=",
    exp.GT: ">",
    exp.GTE: ">=",
    exp.LT: "<",
    exp.LTE: "<=",
    exp.And: "and",
    exp.Or: "or",
}
_FUNCTIONS = {
    exp.Floor: "math.floor",
    exp.Ceil: "math.ceil",
    exp.Sqrt: "math.sqrt",
    exp.Asin: "math.asin",
    exp.Sin: "math.sin",
    exp.Cos: "math.cos",
    exp.Radians: "math.radians",
    exp.Abs: "abs",
}


class UntranslatableExpression(ValueError):
    """A catalog expression uses SQL the stream translator does not know."""


def _python(node: exp.Expression) -> str:
    if isinstance(node, exp.Paren):
        return f"({_python(node.this)})"
    if isinstance(node, exp.Column):
        return f"r[{node.name!r}]"
    if isinstance(node, exp.Literal):
        return repr(node.this) if node.is_string else node.this
    if isinstance(node, exp.Boolean):
        return "True" if node.this else "False"
    if isinstance(node, exp.Null):
        return "None"
    if isinstance(node, exp.Neg):
        return f"(-{_python(node.this)})"
    if isinstance(node, exp.Not):
        return f"(not {_python(node.this)})"
    if type(node) in _BINARY:
        return f"({_python(node.this)} {_BINARY[type(node)]} {_python(node.expression)})"
    if type(node) in _FUNCTIONS:
        return f"{_FUNCTIONS[type(node)]}({_python(node.this)})"
    if isinstance(node, exp.Pow):
        return f"math.pow({_python(node.this)}, {_python(node.expression)})"
    if isinstance(node, exp.Nullif):
        value, other = _python(node.this), _python(node.expression)
        return f"_nullif({value}, {other})"
    if isinstance(node, exp.Case | exp.If):
        return _case(node)
    raise UntranslatableExpression(
        f"{node.sql('spark')!r} ({type(node).__name__}) has no stream translation; "
        "add it to fraud_platform/features/stream.py"
    )


def _case(node: exp.Expression) -> str:
    """CASE WHEN c THEN a [WHEN ...] ELSE b END, as nested conditional expressions. A null
    condition is false in SQL and falsy in Python, so the branches agree."""
    if isinstance(node, exp.If):
        branches, default = [node], node.args.get("false")
    else:
        branches, default = node.args["ifs"], node.args.get("default")
    text = _python(default) if default is not None else "None"
    for branch in reversed(branches):
        condition, value = _python(branch.this), _python(branch.args["true"])
        text = f"({value} if {condition} else {text})"
    return text


def python_expression(sql: str) -> str:
    """The Python expression (over a row dict `r`) computing a catalog SQL expression."""
    return _python(sqlglot.parse_one(sql, read="spark"))


def _feature(feature: Feature) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": feature.name, "dtype": feature.dtype}
    if feature.kind == "window":
        entry |= {
            "aggregate": feature.aggregate,
            "value": python_expression(feature.value),
            "window_ms": feature.window_ms,
            "window": feature.window,
        }
        if feature.entity == "pair":  # the user's events at the transaction's merchant only
            entry["match"] = python_expression("merchant_id")
    elif feature.kind == "label":
        entry |= {"aggregate": feature.aggregate, "window_ms": feature.window_ms}
    else:
        entry["python"] = python_expression(feature.expression)
    return entry


def _windows(entities: tuple[str, ...], shifted: bool) -> list[Feature]:
    return [
        f for f in CATALOG if f.kind == "window" and f.entity in entities and f.shifted == shifted
    ]


def _labels(entity: str) -> list[Feature]:
    return [f for f in CATALOG if f.kind == "label" and f.entity == entity]


def _derived_from(known: list[Feature]) -> list[Feature]:
    """Derived features whose inputs are all among `known`."""
    names = {f.name for f in known}
    return [f for f in DERIVED_FEATURES if _columns(f.expression) <= names]


def _columns(sql: str) -> set[str]:
    return {c.name for c in sqlglot.parse_one(sql, read="spark").find_all(exp.Column)}


@cache
def stream_features(label_delay_days: int = LABEL_DELAY_DAYS) -> dict[str, Any]:
    """What the streaming jobs compute, compiled.

    The enrichment computes every catalog feature in two keyed steps. By user: the row
    features, the user's windows and the user-at-merchant pairs before the transaction, the
    card's label features, and the derived features those allow. Then by merchant: its
    windows before the transaction and a label delay before it, its label features, and the
    remaining derived features. `label_delay_ms` shifts the delayed windows and the label ones.
    online_user_windows / online_merchant_windows: what the aggregates job keeps in Redis.
    """
    user_side = [*ROW_FEATURES, *_windows(("user", "pair"), False), *_labels("user")]
    user_derived = _derived_from(user_side)
    merchant_side = [*_windows(("merchant",), False), *_windows(("merchant",), True)]
    merchant_side += _labels("merchant")
    merchant_derived = [
        f for f in _derived_from([*user_side, *merchant_side]) if f not in user_derived
    ]
    online = [f for f in _windows(("user",), False) if f.window in STREAM_WINDOWS]
    return {
        "label_delay_ms": label_delay_days * DAY_MS,
        "row": [_feature(f) for f in ROW_FEATURES],
        "user_windows": [_feature(f) for f in _windows(("user", "pair"), False)],
        "user_labels": [_feature(f) for f in _labels("user")],
        "derived": [_feature(f) for f in user_derived],
        "merchant_windows": [_feature(f) for f in _windows(("merchant",), False)],
        "merchant_delayed_windows": [_feature(f) for f in _windows(("merchant",), True)],
        "merchant_labels": [_feature(f) for f in _labels("merchant")],
        "merchant_derived": [_feature(f) for f in merchant_derived],
        "online_user_windows": [_feature(f) for f in online],
        "online_merchant_windows": [_feature(f) for f in MERCHANT_WINDOW_FEATURES],
    }


ENRICHED_PARTS = (
    "row",
    "user_windows",
    "user_labels",
    "derived",
    "merchant_windows",
    "merchant_delayed_windows",
    "merchant_labels",
    "merchant_derived",
)


def enriched_feature_names() -> list[str]:
    """The catalog features every transactions-enriched message carries: all of them."""
    spec = stream_features()
    return [f["name"] for part in ENRICHED_PARTS for f in spec[part]]
