"""The suites as Dagster asset checks: a blocking check that fails stops what is downstream
of its asset in the same run; on good data the run goes through."""

from datetime import date

import dagster as dg
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from assets.raw import raw_checks, raw_transactions
from fraud_platform.partitions import daily
from fraud_platform.resources import LakeResource
from fraud_platform.simulation.history import write_history
from fraud_platform.simulation.reference import build_world

DAY = "2025-03-05"


@dg.asset(key=["test", "downstream"], deps=[raw_transactions], partitions_def=daily)
def downstream() -> dg.MaterializeResult:
    return dg.MaterializeResult()


def run(lake: LakeResource) -> dg.ExecuteInProcessResult:
    with dg.instance_for_test() as instance:
        return dg.materialize(
            [raw_transactions, downstream, *raw_checks],
            partition_key=DAY,
            instance=instance,
            resources={"lake": lake},
            raise_on_error=False,
        )


def materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def test_a_failing_blocking_check_stops_downstream(tmp_path):
    lake = LakeResource(root=str(tmp_path))
    write_history(lake, build_world(seed=2, n_users=200, n_merchants=300), days=1, volume=500,
                  end=date(2025, 3, 6))  # fmt: skip

    good = run(lake)
    (evaluation,) = good.get_asset_check_evaluations()
    assert evaluation.passed, evaluation.metadata["failures"]
    assert materialized(good) == {"raw/transactions", "test/downstream"}

    # A replayed file: every transaction of one hour written a second time.
    hour = next((tmp_path / "raw" / "transactions" / f"date={DAY}").iterdir())
    first = next(hour.glob("*.parquet"))
    pq.write_table(ds.dataset(first).to_table(), hour / "replayed.parquet")

    bad = run(lake)
    (evaluation,) = bad.get_asset_check_evaluations()
    assert not evaluation.passed
    failures = evaluation.metadata["failures"].value
    assert any("expect_column_values_to_be_unique on transaction_id" in f for f in failures)
    assert materialized(bad) == {"raw/transactions"}  # downstream did not run
