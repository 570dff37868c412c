"""The daily data-quality dashboard: built from what the lake holds, with its plots, and
shown in the asset's metadata."""

from datetime import date

import dagster as dg
import pyarrow as pa

from assets.quality import quality_dashboard
from fraud_platform.alerts import Alert, Alerter
from fraud_platform.lake import DEAD_LETTERS_SCHEMA, dead_letter_table, parquet_bytes
from fraud_platform.quality import dashboard
from fraud_platform.resources import LakeResource
from fraud_platform.simulation.history import write_history
from fraud_platform.simulation.reference import build_world

DAY = "2025-03-05"
PNG = b"\x89PNG\r\n\x1a\n"


def lake_with_a_week(tmp_path) -> LakeResource:
    lake = LakeResource(root=str(tmp_path / "lake"))
    write_history(lake, build_world(seed=4, n_users=300, n_merchants=200), days=7, volume=800,
                  end=date(2025, 3, 6))  # fmt: skip
    rejected = pa.Table.from_pylist(
        [{"reason": "amount_out_of_range", "rejected_at": 1741176000000 + i} for i in range(3)],
        schema=DEAD_LETTERS_SCHEMA,
    )
    table = dead_letter_table("dlq-schema-errors")
    folder = tmp_path / "lake" / table.path / f"date={DAY}"
    folder.mkdir(parents=True)
    (folder / "part-0.parquet").write_bytes(parquet_bytes(rejected))
    return lake


def test_the_dashboard_reports_what_the_lake_holds(tmp_path, alerts_file):
    lake = lake_with_a_week(tmp_path)
    Alerter.from_env().send(Alert("quality/test", "WARN", "PSI above 0.25 on amount"))
    folder = tmp_path / "lake" / dashboard.Dashboard(DAY).path
    folder.parent.mkdir(parents=True)
    (folder.parent / "ingestion_raw_transactions.html").write_text("<html>a check's page</html>")
    board = dashboard.build(lake, DAY)
    assert board.pages == ["ingestion_raw_transactions.html"]
    rows = board.summary["rows"]
    assert rows > 0
    assert board.summary["dead_letter_rate"] == round(3 / (rows + 3), 6)
    assert board.tables["dead letters (day)"]["dlq-schema-errors"] == 3
    assert 0 < board.summary["completeness"] <= 1
    assert "label delay (days)" in board.tables["lag percentiles"]
    assert board.summary["alerts_24h"] == 1
    assert {"volume", "missing", "lag"} <= set(board.images)
    assert all(png.startswith(PNG) for png in board.images.values())
    page = board.html()
    assert "PSI above 0.25 on amount" in page and page.count("data:image/png") == len(board.images)
    assert '<a href="ingestion_raw_transactions.html">' in page


def test_the_dashboard_asset_writes_the_page_and_shows_its_plot(tmp_path):
    lake = lake_with_a_week(tmp_path)
    with dg.instance_for_test() as instance:
        result = dg.materialize([quality_dashboard], partition_key=DAY, instance=instance,
                                resources={"lake": lake})  # fmt: skip
    (event,) = result.asset_materializations_for_node("quality__dashboard")
    page = (
        tmp_path / "lake" / "analytics" / "data_quality_reports" / f"date={DAY}" / "dashboard.html"
    )
    assert page.read_text().startswith("<!doctype html>")
    assert event.metadata["rows"].value > 0
    assert "data:image/png;base64," in event.metadata["plots"].value
