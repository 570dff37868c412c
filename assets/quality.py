"""Quality layer: the daily data-quality dashboard (the checks live beside their assets)."""

import dagster as dg

from assets.features import transaction_features
from assets.processed import processed_transactions
from assets.raw import raw_labels, raw_predictions, raw_transactions
from fraud_platform.batch.metadata import partition_dates, timed
from fraud_platform.lake import write_atomically
from fraud_platform.partitions import daily
from fraud_platform.plots import images_md
from fraud_platform.quality import dashboard
from fraud_platform.resources import LakeResource


@dg.asset(
    key_prefix="quality",
    name="dashboard",
    group_name="quality",
    partitions_def=daily,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[
        raw_transactions,
        raw_labels,
        raw_predictions,
        processed_transactions,
        transaction_features,
    ],
    kinds={"html"},
)
def quality_dashboard(
    context: dg.AssetExecutionContext, lake: LakeResource
) -> dg.MaterializeResult:
    """The day's volume (7-day trend), completeness, validity, consistency, freshness, drift
    and the last 24 hours of alerts: an HTML page with plots in
    analytics/data_quality_reports/date=.../dashboard.html."""
    metadata: dict = {}
    filesystem, base = lake.filesystem()
    with timed(metadata):
        for day in partition_dates(context):
            board = dashboard.build(lake, day)
            write_atomically(filesystem, f"{base}/{board.path}", board.html().encode())
    main = {k: board.images[k] for k in ("volume", "psi") if k in board.images}
    return dg.MaterializeResult(
        metadata={
            **metadata,
            **board.summary,
            "path": dg.MetadataValue.path(lake.uri(board.path)),
            **lake.link(board.path),
            "plots": dg.MetadataValue.md(images_md(main)),
        }
    )


defs = dg.Definitions(assets=[quality_dashboard])
