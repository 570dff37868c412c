"""Recovery: backups in the lake (the feature store's RDB snapshot every hour, the
warehouse and the model registry every day after the nightly batch), the job that puts a
Redis snapshot back, the corruption runbook for one date of a lake table
(fraud_platform/recovery/), and the replay of a time range of ingested transactions."""

from dataclasses import replace
from datetime import UTC, datetime

import dagster as dg

from assets.models import production_model
from assets.warehouse import daily_business_metrics, transactions_fact
from fraud_platform.ingestion.archiver import ROUTES
from fraud_platform.ingestion.replay import replay_ingest
from fraud_platform.ingestion.validator import ValidatorConfig
from fraud_platform.recovery import backups, corruption, restore
from fraud_platform.resources import (
    KafkaResource,
    LakeResource,
    RedisResource,
    WarehouseResource,
)

BACKUPS = {"key_prefix": "backups", "group_name": "backups"}
RUNNING = dg.DefaultScheduleStatus.RUNNING


def _result(backup: backups.Backup) -> dg.MaterializeResult:
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(backup.path),
            "files": backup.files,
            "bytes": backup.bytes,
        }
    )


@dg.asset(**BACKUPS, kinds={"redis"})
def redis_snapshot(redis: RedisResource, lake: LakeResource) -> dg.MaterializeResult:
    """A fresh RDB snapshot of the online feature store, copied into the lake: the restore
    point that survives losing the machine (Redis's own RDB and AOF do not)."""
    return _result(backups.snapshot_redis(redis.client(), lake))


@dg.asset(**BACKUPS, deps=[transactions_fact, daily_business_metrics],
          kinds={"duckdb", "snowflake", "parquet"})  # fmt: skip
def warehouse_export(lake: LakeResource, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Every warehouse table as Parquet in the lake, one folder per export."""
    with warehouse.connect() as connection:
        return _result(backups.export_warehouse(connection, lake, datetime.now(UTC)))


@dg.asset(**BACKUPS, deps=[production_model])
def model_registry_export(lake: LakeResource) -> dg.MaterializeResult:
    """The model registry (candidates, production pointer, promotion history) copied under
    one stamp, so a lost or overwritten pointer can be put back."""
    return _result(backups.export_models(lake, datetime.now(UTC)))


class RedisRestoreConfig(dg.Config):
    snapshot: str = ""  # a snapshot path in the lake; the newest when empty


@dg.op(description="Copy a Redis snapshot from the lake into the running Redis: the keys it "
       "lacks come back with their TTLs; keys it has, written since, are kept. Then the "
       "windows of entities with events since the snapshot are rebuilt from the lake.")  # fmt: skip
def restore_redis_snapshot(
    context: dg.OpExecutionContext, config: RedisRestoreConfig, redis: RedisResource,
    lake: LakeResource,
) -> dg.Output[int]:  # fmt: skip
    def log(done: int, total: int) -> None:
        if done == total or done % 100_000 == 0:
            context.log.info(f"{done:,} of {total:,} keys")

    result, rebuild = restore.restore_online_store(redis.client(), lake, config.snapshot, log)
    context.log.info(f"windows rebuilt since the snapshot: {vars(rebuild)}")
    return dg.Output(result.restored, metadata={
        **vars(result), "windows_rebuilt": rebuild.written, "windows_kept": rebuild.kept,
        "entities_with_events_since": dg.MetadataValue.json(rebuild.entities),
    })  # fmt: skip


@dg.job(description="Restore the online feature store from the lake's newest Redis snapshot "
        "(or a chosen one), while Redis serves.")  # fmt: skip
def redis_restore() -> None:
    restore_redis_snapshot()


class LakeRepairConfig(dg.Config):
    topic: str = "transactions-raw"  # the archived topic whose lake table is damaged
    date: str  # YYYY-MM-DD
    topic_prefix: str = ""


IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED,
             dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]  # fmt: skip


def materializing(instance: dg.DagsterInstance, day: str) -> list[str]:
    """The ids of runs in flight that materialize `day`: its partition, or a backfill's range
    that holds it (one run for many days: the Spark assets' single-run policy)."""
    runs = []
    for record in instance.get_run_records(dg.RunsFilter(statuses=IN_FLIGHT)):
        tags = record.dagster_run.tags
        first = tags.get("dagster/asset_partition_range_start")
        last = tags.get("dagster/asset_partition_range_end")
        if tags.get("dagster/partition") == day or (first and last and first <= day <= last):
            runs.append(record.dagster_run.run_id)
    return runs


@dg.op(description="The corruption runbook for one date of an archived lake table: refuse "
       "while runs materialize the date, name its damaged files, quarantine them all, "
       "rebuild it from Kafka, check it.")  # fmt: skip
def repair_lake_date(
    context: dg.OpExecutionContext, config: LakeRepairConfig, lake: LakeResource,
    kafka: KafkaResource,
) -> dg.Output[int]:  # fmt: skip
    route = ROUTES[config.topic]
    day = datetime.strptime(config.date, "%Y-%m-%d").date()
    busy = materializing(context.instance, config.date)
    if busy:  # the runbook stops the affected assets before it touches their input
        raise dg.Failure(f"{len(busy)} run(s) are materializing {config.date}: terminate them "
                         "(Runs page) so they read neither the damaged files nor a half-done "
                         "repair, then launch this job again",
                         metadata={"runs": dg.MetadataValue.json(busy)})  # fmt: skip
    checks = corruption.quality_checks(route, lake)
    repair = corruption.repair_date(route, kafka.bootstrap_servers, lake, day,
                                    config.topic_prefix, checks)  # fmt: skip
    for damage in repair.damaged:
        context.log.warning(f"damaged: {damage.path}: {damage.reason}")
    if not repair.healthy:
        raise dg.Failure(f"{route.table.path} {day} is still damaged after the rebuild",
                         metadata={"damaged": dg.MetadataValue.json(
                                       [vars(d) for d in repair.damaged_after]),
                                   "checks": dg.MetadataValue.json(repair.checks)})  # fmt: skip
    return dg.Output(repair.rows, metadata={
        "damaged": dg.MetadataValue.json([vars(d) for d in repair.damaged]),
        "quarantined": len(repair.quarantined), "rows": repair.rows,
        "checks": dg.MetadataValue.json(repair.checks),
        "next": f"re-materialize {config.date} downstream of {route.table.path} (Materialize "
                "with the partition, or a backfill)",
    })  # fmt: skip


@dg.job(description="Data-corruption runbook for one date: quarantine, rebuild from Kafka, "
        "check; then re-materialize the date downstream.")  # fmt: skip
def lake_repair() -> None:
    repair_lake_date()


class IngestReplayConfig(dg.Config):
    start: str  # ISO 8601, UTC unless it names a zone: the first event time replayed
    end: str  # ISO 8601: the event time where the replay stops (excluded)
    topic_prefix: str = ""


def _epoch_ms(iso: str) -> int:
    moment = datetime.fromisoformat(iso)
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp() * 1000)


@dg.op(description="Replay transactions-ingest messages of a time range through the "
       "validator's rules: what the range lacks in transactions-raw is delivered, the rest "
       "is counted; nothing is written twice.")  # fmt: skip
def replay_ingest_range(
    context: dg.OpExecutionContext, config: IngestReplayConfig, kafka: KafkaResource
) -> dg.Output[int]:
    validator = replace(ValidatorConfig.from_env(), bootstrap=kafka.bootstrap_servers,
                        topic_prefix=config.topic_prefix)  # fmt: skip
    replay = replay_ingest(validator, _epoch_ms(config.start), _epoch_ms(config.end))
    context.log.info(f"replayed {config.start} to {config.end}: {replay.summary()}")
    return dg.Output(replay.delivered, metadata={
        k: dg.MetadataValue.json(v) if isinstance(v, dict) else v
        for k, v in replay.summary().items()
    })  # fmt: skip


@dg.job(description="Replay a time range of transactions-ingest into transactions-raw (and "
        "the archiver, which lands what is new), without duplicates.")  # fmt: skip
def ingest_replay() -> None:
    replay_ingest_range()


redis_backup = dg.define_asset_job("redis_backup", selection=[redis_snapshot])
daily_exports = dg.define_asset_job(
    "daily_exports", selection=[warehouse_export, model_registry_export]
)

defs = dg.Definitions(
    assets=[redis_snapshot, warehouse_export, model_registry_export],
    jobs=[redis_backup, daily_exports, redis_restore, lake_repair, ingest_replay],
    schedules=[
        dg.ScheduleDefinition(job=redis_backup, cron_schedule="30 * * * *", default_status=RUNNING),
        # After the nightly batch (02:00) and the retention cleanup (05:00).
        dg.ScheduleDefinition(
            job=daily_exports, cron_schedule="30 5 * * *", default_status=RUNNING
        ),
    ],
)
