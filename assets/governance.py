"""Governance: the audit log loaded into the warehouse every hour (after its chain is
verified); the retention policy enforced every day (with a dry-run option), with the lake
bucket's lifecycle rules kept equal to it when the lake is on S3; GDPR erasure as a job."""

import dagster as dg
from dagster_aws.s3 import S3Resource

from assets.warehouse import load_rows
from fraud_platform.config import Settings
from fraud_platform.governance import audit, gdpr
from fraud_platform.governance.retention import apply_cleanup, apply_lifecycle, plan_cleanup
from fraud_platform.resources import LakeResource, RedisResource, WarehouseResource
from fraud_platform.warehouse.schema import AUDIT_LOG, create_tables
from fraud_platform.warehouse.sources import audit_head, audit_rows


@dg.asset(key_prefix="warehouse", group_name="governance", kinds={"duckdb", "snowflake"})
def audit_log(warehouse: WarehouseResource) -> dg.MaterializeResult:
    """The hash-chained audit log, searchable in the warehouse. The chain is verified first,
    its ends held against the anchor file and the newest entry already loaded here: a
    tampered or cut log is not loaded, and the run fails naming the first problem."""
    with warehouse.connect() as connection:
        create_tables(connection, (AUDIT_LOG,))
        head = audit_head(connection)
    chain = list(audit.entries())  # read once: verified, then loaded
    verification = audit.verify(chain, heads={"warehouse": head} if head else None)
    if not verification.ok:
        raise dg.Failure(
            description=f"the audit log does not verify: {verification.problem}",
            metadata={"entries_verified": verification.entries},
        )
    newer = [e for e in chain if "seq" in e and (head is None or e["seq"] > head[0])]
    metadata = load_rows(warehouse, AUDIT_LOG, audit_rows(newer))
    return dg.MaterializeResult(
        metadata={
            **metadata,
            "entries_verified": verification.entries,
            "notes": dg.MetadataValue.md("\n".join(f"- {n}" for n in verification.notes) or "none"),
        }
    )


audit_log_job = dg.define_asset_job("audit_log_load", selection=[audit_log])
audit_log_schedule = dg.ScheduleDefinition(
    job=audit_log_job, cron_schedule="15 * * * *", default_status=dg.DefaultScheduleStatus.RUNNING
)


class CleanupConfig(dg.Config):
    dry_run: bool = False  # only list what the policy would delete or archive


@dg.op(description="Delete or archive what the retention policy retires; on S3, re-apply the "
       "bucket's lifecycle rules.")  # fmt: skip
def enforce_retention(
    context: dg.OpExecutionContext, config: CleanupConfig, lake: LakeResource, s3: S3Resource
) -> dg.Output[int]:
    plan = plan_cleanup(lake, logs_dir=Settings.from_env().home / "logs")
    for item in plan:
        context.log.info(f"{'would ' if config.dry_run else ''}{item.action} {item.path} "
                         f"({item.kind}, {item.dated})")  # fmt: skip
    if not config.dry_run:
        apply_cleanup(lake, plan)
    rules = apply_lifecycle(s3.get_client(), lake.root) if lake.is_s3 and not config.dry_run else []
    return dg.Output(
        len(plan),
        metadata={
            "dry_run": config.dry_run,
            "retired": len(plan),
            "by_kind": dg.MetadataValue.json(
                {kind: sum(i.kind == kind for i in plan) for kind in {i.kind for i in plan}}
            ),
            "items": dg.MetadataValue.md(
                "\n".join(f"- {i.action} `{i.path}` ({i.dated})" for i in plan[:200]) or "none"
            ),
            "lifecycle_rules": len(rules),
        },
    )


@dg.job(description="The retention policy: training data 90 days, logs 90 days, models a year "
        "then archived, transactions 7 years.")  # fmt: skip
def retention_cleanup() -> None:
    enforce_retention()


retention_schedule = dg.ScheduleDefinition(
    job=retention_cleanup,
    cron_schedule="0 5 * * *",  # after the nightly batch
    default_status=dg.DefaultScheduleStatus.RUNNING,
)


class ErasureConfig(dg.Config):
    # The request, not the user: a run's configuration is kept in Dagster's history, and
    # the user's id must not be (receive it with `fraud-platform gdpr request --user ID`).
    request_id: str


@dg.op(description="Erase a GDPR request's user: plan, then store by store (the streaming "
       "jobs' state, the lake with its backups, Redis and its files, the warehouse and its "
       "file, Dagster's storage), resuming a stopped run, then verify by query and by "
       "bytes that no store holds a trace.")  # fmt: skip
def erase_user_data(
    context: dg.OpExecutionContext,
    config: ErasureConfig,
    lake: LakeResource,
    redis: RedisResource,
    warehouse: WarehouseResource,
) -> dg.Output[str]:
    request = gdpr.erase(lake, redis.client(), warehouse, config.request_id)
    context.log.info(f"{request['pseudonym']} erased: {request['erased']}")
    return dg.Output(
        request["status"],
        metadata={
            "pseudonym": request["pseudonym"],
            "erased": dg.MetadataValue.json(request["erased"]),
            "traces_left": dg.MetadataValue.json(request["traces_left"]),
            "deadline": request["deadline"],
        },
    )


@dg.job(description="GDPR right to be forgotten, for one received request.")
def gdpr_erasure() -> None:
    erase_user_data()


defs = dg.Definitions(
    assets=[audit_log],
    jobs=[audit_log_job, retention_cleanup, gdpr_erasure],
    schedules=[audit_log_schedule, retention_schedule],
)
