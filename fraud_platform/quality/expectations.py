"""The checks Great Expectations lacks, written the GX 1.x way: a metric provider computes a
value per execution engine, an Expectation (a pydantic model) compares it with its kwargs.

Importing this module registers them with GX under their snake_case names (the `type` in
quality_suites/*.json); the runner imports it right after GX. Table-level, multi-column
expectations keep one suite entry per check rather than one per catalog feature.

Engines: every metric has a pandas implementation; the drift, time-order and spike metrics
also run on Spark. The model metrics and single-feature AUC need all of a column in memory
anyway and are pandas only.

The classes are pydantic (v1) models, as GX's own are: their annotations use typing's
Dict/Union/Optional, which pydantic v1 resolves on every supported Python.
"""

# ruff: noqa: UP006, UP007, UP035, UP045

from __future__ import annotations

import re
from typing import Any, ClassVar, Dict, List, Optional, Tuple, Union

import numpy as np
from great_expectations.compatibility.pyspark import functions as F
from great_expectations.core.metric_domain_types import MetricDomainTypes
from great_expectations.core.suite_parameters import SuiteParameterDict
from great_expectations.execution_engine import PandasExecutionEngine, SparkDFExecutionEngine
from great_expectations.expectations.expectation import BatchExpectation
from great_expectations.expectations.metrics.metric_provider import metric_value
from great_expectations.expectations.metrics.table_metric_provider import TableMetricProvider
from great_expectations.expectations.model_field_types import ConditionParser
from great_expectations.expectations.row_conditions import RowConditionType

from fraud_platform.quality import drift

Number = Union[float, int, SuiteParameterDict]
Text = Union[str, SuiteParameterDict]


def _frame(execution_engine: Any, metric_domain_kwargs: dict) -> Any:
    frame, _, _ = execution_engine.get_compute_domain(
        domain_kwargs=metric_domain_kwargs, domain_type=MetricDomainTypes.TABLE
    )
    return frame


# -- metrics -------------------------------------------------------------------------------


def _points(references: dict[str, Any], columns: Any) -> dict[str, list[float]]:
    """{column: its reference's points} for the frame's columns that have a reference."""
    return {c: ref["points"] for c, ref in references.items() if ref is not None and c in columns}


class ColumnsCdfAt(TableMetricProvider):
    """{column: share of values <= each of its reference's points}."""

    metric_name = "table.columns_cdf_at"
    value_keys = ("references",)

    @metric_value(engine=PandasExecutionEngine)
    def _pandas(cls, execution_engine, metric_domain_kwargs, metric_value_kwargs, **_):
        frame = _frame(execution_engine, metric_domain_kwargs)
        wanted = _points(metric_value_kwargs["references"], frame.columns)
        return {c: drift.cdf_at(frame[c], points).tolist() for c, points in wanted.items()}

    @metric_value(engine=SparkDFExecutionEngine)
    def _spark(cls, execution_engine, metric_domain_kwargs, metric_value_kwargs, **_):
        frame = _frame(execution_engine, metric_domain_kwargs)
        wanted = _points(metric_value_kwargs["references"], frame.columns)
        if not wanted:
            return {}
        aggregates = [
            F.avg(
                F.when(F.isnan(F.col(c).cast("double")) | F.col(c).isNull(), None)
                .when(F.col(c) <= float(p), 1.0)
                .otherwise(0.0)
            ).alias(f"{i}_{j}")
            for i, (c, points) in enumerate(wanted.items())
            for j, p in enumerate(points)
        ]
        row = frame.agg(*aggregates).collect()[0]
        return {
            c: [row[f"{i}_{j}"] or 0.0 for j in range(len(points))]
            for i, (c, points) in enumerate(wanted.items())
        }


class Correlations(TableMetricProvider):
    """{"a|b": Pearson r} for the pairs named by the reference's keys."""

    metric_name = "table.correlations"
    value_keys = ("reference",)

    @metric_value(engine=PandasExecutionEngine)
    def _pandas(cls, execution_engine, metric_domain_kwargs, metric_value_kwargs, **_):
        frame = _frame(execution_engine, metric_domain_kwargs)
        pairs = list(metric_value_kwargs["reference"])
        return drift.correlations(frame, sorted({c for p in pairs for c in p.split("|")}), pairs)


class SplitTimeBounds(TableMetricProvider):
    """The latest time of the earlier split and the earliest of the later one."""

    metric_name = "table.split_time_bounds"
    value_keys = ("time_column", "split_column", "earlier", "later")

    @metric_value(engine=PandasExecutionEngine)
    def _pandas(cls, execution_engine, metric_domain_kwargs, metric_value_kwargs, **_):
        frame = _frame(execution_engine, metric_domain_kwargs)
        kw = metric_value_kwargs
        split, time = frame[kw["split_column"]].astype(str), frame[kw["time_column"]]
        earlier, later = time[split == kw["earlier"]], time[split == kw["later"]]
        return {
            "earlier_max": None if earlier.empty else earlier.max().item(),
            "later_min": None if later.empty else later.min().item(),
        }

    @metric_value(engine=SparkDFExecutionEngine)
    def _spark(cls, execution_engine, metric_domain_kwargs, metric_value_kwargs, **_):
        frame = _frame(execution_engine, metric_domain_kwargs)
        kw = metric_value_kwargs
        split, time = F.col(kw["split_column"]).cast("string"), F.col(kw["time_column"])
        row = frame.agg(
            F.max(F.when(split == kw["earlier"], time)).alias("earlier_max"),
            F.min(F.when(split == kw["later"], time)).alias("later_min"),
        ).collect()[0]
        return {"earlier_max": row["earlier_max"], "later_min": row["later_min"]}


class SingleFeatureAuc(TableMetricProvider):
    """{column: max(AUC, 1 - AUC) of the column alone against the label}."""

    metric_name = "table.single_feature_auc"
    value_keys = ("columns", "label_column")

    @metric_value(engine=PandasExecutionEngine)
    def _pandas(cls, execution_engine, metric_domain_kwargs, metric_value_kwargs, **_):
        frame = _frame(execution_engine, metric_domain_kwargs)
        labels = frame[metric_value_kwargs["label_column"]]
        return {
            column: drift.single_feature_auc(frame[column], labels)
            for column in metric_value_kwargs["columns"]
            if column in frame.columns and np.issubdtype(frame[column].dtype, np.number)
        }


def _spike(amount: Any, average: Any, amount_above: float, average_below: float) -> Any:
    return (amount > amount_above) & (average < average_below)


class AmountSpikeCount(TableMetricProvider):
    """Rows with an amount above `amount_above` while the user's average is below
    `average_below` (the design's cross-field anomaly)."""

    metric_name = "table.amount_spike_count"
    value_keys = ("amount_column", "average_column", "amount_above", "average_below")

    @metric_value(engine=PandasExecutionEngine)
    def _pandas(cls, execution_engine, metric_domain_kwargs, metric_value_kwargs, **_):
        frame = _frame(execution_engine, metric_domain_kwargs)
        kw = metric_value_kwargs
        spikes = _spike(frame[kw["amount_column"]], frame[kw["average_column"]],
                        kw["amount_above"], kw["average_below"])  # fmt: skip
        return int(spikes.sum())

    @metric_value(engine=SparkDFExecutionEngine)
    def _spark(cls, execution_engine, metric_domain_kwargs, metric_value_kwargs, **_):
        frame = _frame(execution_engine, metric_domain_kwargs)
        kw = metric_value_kwargs
        spikes = _spike(F.col(kw["amount_column"]), F.col(kw["average_column"]),
                        kw["amount_above"], kw["average_below"])  # fmt: skip
        return frame.where(spikes).count()


class ModelMetrics(TableMetricProvider):
    """The platform's evaluation (AUC, AP, card precision@top_k when the rows carry date and
    user_id, precision/recall/flagged share at the threshold) of a score column against a
    label column."""

    metric_name = "table.model_metrics"
    value_keys = ("label_column", "score_column", "threshold", "top_k")

    @metric_value(engine=PandasExecutionEngine)
    def _pandas(cls, execution_engine, metric_domain_kwargs, metric_value_kwargs, **_):
        from fraud_platform.models.evaluation import evaluate_frame

        frame = _frame(execution_engine, metric_domain_kwargs)
        kw = metric_value_kwargs
        scores = frame[kw["score_column"]]
        if scores.isna().all():
            return None
        scored = frame.rename(columns={kw["label_column"]: "label"})
        result = evaluate_frame(scored, kw["score_column"], kw["threshold"], int(kw["top_k"]))
        result = result.as_dict()
        labels = scored["label"].to_numpy()
        result["accuracy"] = float(((scores.to_numpy() >= kw["threshold"]) == labels).mean())
        return result


class TopRanked(TableMetricProvider):
    """The values of `column` in the first `top` rows by `rank_by`, descending."""

    metric_name = "table.top_ranked"
    value_keys = ("column", "rank_by", "top")

    @metric_value(engine=PandasExecutionEngine)
    def _pandas(cls, execution_engine, metric_domain_kwargs, metric_value_kwargs, **_):
        frame = _frame(execution_engine, metric_domain_kwargs)
        kw = metric_value_kwargs
        ranked = frame.sort_values(kw["rank_by"], ascending=False, kind="stable")
        return ranked[kw["column"]].head(int(kw["top"])).astype(str).tolist()


# -- expectations --------------------------------------------------------------------------


class _Expectation(BatchExpectation):
    """Batch expectations whose kwargs name the metric's value keys."""

    row_condition: RowConditionType = None  # which rows to validate (e.g. the test split)
    condition_parser: Optional[ConditionParser] = None
    domain_keys: ClassVar[Tuple[str, ...]] = ("row_condition", "condition_parser")

    def kw(self, name: str) -> Any:
        return self._get_success_kwarg(name)

    def metric(self, metrics: Dict) -> Any:
        return metrics.get(self.metric_dependencies[0])


class _DriftExpectation(_Expectation):
    """Compares the batch with a reference; with fewer than min_rows rows (or no reference)
    sampling noise would dominate, so the expectation is met and says it compared nothing."""

    min_rows: Number = 1000

    def compared(self, metrics: Dict) -> bool:
        return bool(self.kw(self.reference_key)) and metrics["table.row_count"] >= self.kw(
            "min_rows"
        )

    def skipped(self, metrics: Dict) -> Dict:
        rows = metrics["table.row_count"]
        reason = f"not compared: {rows} rows (min_rows {self.kw('min_rows')}) or no reference"
        return {"success": True, "result": {"observed_value": reason}}


class _ColumnsStatisticExpectation(_DriftExpectation):
    """Each column's `statistic` (a function of drift.py) against its reference is below the
    limit named by `limit_key`."""

    references: Union[Dict[str, Any], SuiteParameterDict]

    reference_key: ClassVar[str] = "references"
    statistic: ClassVar[str]
    limit_key: ClassVar[str]
    metric_dependencies = ("table.columns_cdf_at", "table.row_count")

    def _validate(self, metrics: Dict, runtime_configuration=None, execution_engine=None) -> Dict:
        if not self.compared(metrics):
            return self.skipped(metrics)
        statistic = getattr(drift, self.statistic)
        values = drift.compare(self.kw("references"), self.metric(metrics), statistic)
        return _each_below(values, self.kw(self.limit_key))


class ExpectColumnsPsiToBeLessThan(_ColumnsStatisticExpectation):
    """Each column's PSI against its reference (e.g. the previous 7 days) is below max_psi;
    references come from `drift.reference`."""

    max_psi: Number = 0.25

    statistic: ClassVar[str] = "psi"
    limit_key: ClassVar[str] = "max_psi"
    success_keys = ("references", "max_psi", "min_rows")


class ExpectColumnsKsStatisticToBeLessThan(_ColumnsStatisticExpectation):
    """Each column's KS statistic against its reference is below max_statistic."""

    max_statistic: Number = 0.1

    statistic: ClassVar[str] = "ks"
    limit_key: ClassVar[str] = "max_statistic"
    success_keys = ("references", "max_statistic", "min_rows")


class ExpectColumnsCorrelationsToMatchReference(_DriftExpectation):
    """Every pairwise Pearson correlation of the reference's columns moved by less than
    max_change from the reference ({"a|b": r}, from `drift.correlations`)."""

    reference: Union[Dict[str, float], SuiteParameterDict]
    max_change: Number = 0.2

    reference_key: ClassVar[str] = "reference"
    metric_dependencies = ("table.correlations", "table.row_count")
    success_keys = ("reference", "max_change", "min_rows")

    def _validate(self, metrics: Dict, runtime_configuration=None, execution_engine=None) -> Dict:
        if not self.compared(metrics):
            return self.skipped(metrics)
        current = metrics["table.correlations"]
        changes = {
            pair: round(abs(current[pair] - r), 4)
            for pair, r in self.kw("reference").items()
            if current.get(pair) is not None
        }
        return _each_below(changes, self.kw("max_change"))


def _counted(observed: Any, unexpected: int, elements: int, sample: list | None = None) -> Dict:
    """A result with the counts Data Docs' renderers expect of a check that counts items."""
    return {
        "observed_value": observed,
        "element_count": elements,
        "unexpected_count": unexpected,
        "unexpected_percent": 100.0 * unexpected / elements if elements else 0.0,
        "partial_unexpected_list": sample or [],
    }


def _each_below(values: dict[str, float], limit: float) -> Dict:
    """Every column's value below `limit`; the offenders, worst first, are the sample."""
    over = {column: value for column, value in values.items() if value >= limit}
    worst = sorted(over, key=over.get, reverse=True)
    return {"success": not over, "result": _counted(values, len(over), len(values), worst)}


class ExpectSplitsToBeTimeOrdered(_Expectation):
    """Every row of the earlier split is strictly older than every row of the later one
    (a time-ordered train/test split: no test row precedes a training row)."""

    time_column: Text
    split_column: Text = "split"
    earlier: Text = "train"
    later: Text = "test"

    metric_dependencies = ("table.split_time_bounds",)
    success_keys = ("time_column", "split_column", "earlier", "later")

    def _validate(self, metrics: Dict, runtime_configuration=None, execution_engine=None) -> Dict:
        bounds = self.metric(metrics)
        ordered = (
            bounds["earlier_max"] is not None
            and bounds["later_min"] is not None
            and bounds["earlier_max"] < bounds["later_min"]
        )
        return {"success": ordered, "result": {"observed_value": bounds}}


class ExpectNoColumnToPredictLabelAlone(_Expectation):
    """No single feature separates the labels almost perfectly on its own (max(AUC, 1-AUC)
    below max_auc): a feature computed from the future or from the label itself would."""

    columns: Union[List[str], SuiteParameterDict]
    label_column: Text = "label"
    max_auc: Number = 0.97

    metric_dependencies = ("table.single_feature_auc",)
    success_keys = ("columns", "label_column", "max_auc")

    def _validate(self, metrics: Dict, runtime_configuration=None, execution_engine=None) -> Dict:
        scores = {c: round(v, 4) for c, v in self.metric(metrics).items() if v is not None}
        return _each_below(scores, self.kw("max_auc"))


class ExpectDeadLetterRateToBeBelow(_Expectation):
    """Dead-lettered messages are under max_rate of the day's volume (valid + dead-lettered);
    `dead_letters` is the day's count from the ingestion side."""

    dead_letters: Number
    max_rate: Number = 0.001

    metric_dependencies = ("table.row_count",)
    success_keys = ("dead_letters", "max_rate")

    def _validate(self, metrics: Dict, runtime_configuration=None, execution_engine=None) -> Dict:
        dead = int(self.kw("dead_letters"))
        volume = self.metric(metrics) + dead
        rate = dead / volume if volume else 0.0
        observed = {"rate": round(rate, 6), "dead_letters": dead, "volume": volume}
        return {"success": rate < self.kw("max_rate"), "result": {"observed_value": observed}}


class ExpectAmountSpikeRateToBeBelow(_Expectation):
    """Under max_rate of the rows pair a large amount with a small user average (amount above
    amount_above while the average is below average_below)."""

    amount_column: Text = "amount"
    average_column: Text
    amount_above: Number = 10_000.0
    average_below: Number = 100.0
    max_rate: Number = 0.05

    metric_dependencies = ("table.amount_spike_count", "table.row_count")
    success_keys = ("amount_column", "average_column", "amount_above", "average_below",
                    "max_rate")  # fmt: skip

    def _validate(self, metrics: Dict, runtime_configuration=None, execution_engine=None) -> Dict:
        spikes, rows = metrics["table.amount_spike_count"], metrics["table.row_count"]
        rate = spikes / rows if rows else 0.0
        return {
            "success": rate < self.kw("max_rate"),
            "result": _counted(round(rate, 6), spikes, rows),
        }


class ExpectModelMetricToBeBetween(_Expectation):
    """One of the platform's evaluation metrics of a score column (average_precision,
    auc_roc, card_precision_at_k, accuracy, predicted_positive_share, ...) lies in
    [min_value, max_value], or strictly inside when strict."""

    label_column: Text = "label"
    score_column: Text = "score"
    threshold: Number = 0.5
    top_k: Union[int, SuiteParameterDict] = 100
    metric_name: Text
    min_value: Optional[Number] = None
    max_value: Optional[Number] = None
    strict: Union[bool, SuiteParameterDict] = False

    metric_dependencies = ("table.model_metrics",)
    success_keys = ("label_column", "score_column", "threshold", "top_k", "metric_name",
                    "min_value", "max_value", "strict")  # fmt: skip

    def _validate(self, metrics: Dict, runtime_configuration=None, execution_engine=None) -> Dict:
        evaluation = self.metric(metrics) or {}
        value = evaluation.get(self.kw("metric_name"))
        low, high, strict = self.kw("min_value"), self.kw("max_value"), self.kw("strict")
        ok = value is not None and not np.isnan(value)
        if ok and low is not None:
            ok = value > low if strict else value >= low
        if ok and high is not None:
            ok = value < high if strict else value <= high
        return {"success": bool(ok), "result": {"observed_value": value}}


class ExpectScoreToBeatBaseline(_Expectation):
    """The score column beats the baseline column (the production model's scores on the same
    rows) on `metric_name`; met when there is no baseline (every baseline score null)."""

    label_column: Text = "label"
    score_column: Text = "score"
    baseline_column: Text = "production_score"
    threshold: Number = 0.5
    top_k: Union[int, SuiteParameterDict] = 100
    metric_name: Text = "average_precision"

    metric_dependencies = ()
    success_keys = ("label_column", "score_column", "baseline_column", "threshold", "top_k",
                    "metric_name")  # fmt: skip

    def get_validation_dependencies(self, execution_engine=None, runtime_configuration=None):
        """The model metrics twice: of the score column and of the baseline column."""
        from great_expectations.validator.metric_configuration import MetricConfiguration

        dependencies = super().get_validation_dependencies(execution_engine, runtime_configuration)
        for role in ("score", "baseline"):
            dependencies.set_metric_configuration(
                f"{role}_metrics",
                MetricConfiguration(
                    "table.model_metrics",
                    metric_domain_kwargs=self.configuration.get_domain_kwargs(),
                    metric_value_kwargs={
                        "label_column": self.kw("label_column"),
                        "score_column": self.kw(f"{role}_column"),
                        "threshold": self.kw("threshold"),
                        "top_k": self.kw("top_k"),
                    },
                ),
            )
        return dependencies

    def _validate(self, metrics: Dict, runtime_configuration=None, execution_engine=None) -> Dict:
        name = self.kw("metric_name")
        score, baseline = metrics["score_metrics"], metrics["baseline_metrics"]
        value = score and score.get(name)
        base = baseline and baseline.get(name)
        observed = {"candidate": value, "production": base}
        success = value is not None and (base is None or value > base)
        return {"success": bool(success), "result": {"observed_value": observed}}


class ExpectTopRankedValuesToMatchRegex(_Expectation):
    """At least one of the first `top` values of `column` by `rank_by` matches `regex`
    (e.g. an amount feature among the most important)."""

    column: Text = "feature"
    rank_by: Text = "importance"
    top: Number = 5
    regex: Text

    metric_dependencies = ("table.top_ranked",)
    success_keys = ("column", "rank_by", "top", "regex")

    def _validate(self, metrics: Dict, runtime_configuration=None, execution_engine=None) -> Dict:
        top = self.metric(metrics)
        pattern = re.compile(self.kw("regex"))
        return {
            "success": any(pattern.search(value) for value in top),
            "result": {"observed_value": top},
        }
