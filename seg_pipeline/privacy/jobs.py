"""The erasure job (UI launchpad) and its command line, ``seg-erase``; the retention job and
its schedule.

The job's run config is kept in Dagster's run history, so it takes customers by keyed hash:
``customer_keys`` (the pseudonymous key of the exports) or ``email_hashes``; ``customer_ids``
are accepted too, for an operator who accepts that the id stays in the run history. The
command line takes ids and e-mail addresses and passes only their keyed hashes to the run.
"""

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime
from functools import partial

from dagster import (
    Config,
    DagsterInstance,
    DefaultScheduleStatus,
    Definitions,
    JobDefinition,
    OpExecutionContext,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    job,
    op,
    schedule,
)
from pydantic import Field

from seg_pipeline.assets_common import WAREHOUSE_POOL
from seg_pipeline.models.store import ModelStore
from seg_pipeline.names import iso_day
from seg_pipeline.ops.schedules import WAREHOUSE_RUN_TAG
from seg_pipeline.privacy.erasure import erase_customers, keyed_hashes
from seg_pipeline.privacy.files import OwnedFiles
from seg_pipeline.privacy.retention import purge_expired
from seg_pipeline.privacy.vault import Vault
from seg_pipeline.resources import LandingZone, Warehouse

ERASURE_JOB_NAME = "erasure"
RETENTION_JOB_NAME = "retention"


class ErasureRequest(Config):
    """Who to erase: any mix of keyed hashes (preferred) and ids."""

    customer_keys: list[str] = Field(
        default_factory=list,
        description="keyed hashes of customer ids (customer_key in the exports)",
    )
    email_hashes: list[str] = Field(
        default_factory=list,
        description="keyed hashes of e-mail addresses (trimmed, lower case); seg-erase "
        "--email computes them",
    )
    customer_ids: list[str] = Field(
        default_factory=list,
        description="customer ids; they stay in the run history, prefer customer_keys",
    )
    request_id: str = Field(default="", description="the request's id (default: a new UUID)")


def build_erasure_job(tables: Sequence[str], files: OwnedFiles | None = None) -> JobDefinition:
    """The job that erases the customers of one request from ``tables`` (the asset specs'
    ``seg/tables``) and the landing and export files of ``files``, and verifies it."""

    @op(
        name="erase_customers",
        pool=WAREHOUSE_POOL,
        description="Crypto-shred the customers' clear values in the vault, delete their rows "
        "from every table the pipeline owns and their lines from landing and export files, "
        "record tombstones and an audit row, verify that nothing identifies them any more.",
    )
    def _erase(
        context: OpExecutionContext,
        config: ErasureRequest,
        warehouse: Warehouse,
        vault: Vault,
        models: ModelStore,
    ) -> None:
        # here, not at module level: loading the definitions must not import scikit-learn
        from seg_pipeline.segmentation.model import erase_training_rows

        with warehouse.connection() as conn, vault.attached(conn) as sealed:
            report = erase_customers(
                conn,
                tables,
                customer_ids=config.customer_ids,
                customer_keys=config.customer_keys,
                email_hashes=config.email_hashes,
                request_id=config.request_id or None,
                vault=sealed,
                files=files,
                purge_models=partial(erase_training_rows, models=models),
            )
        context.log.info(
            f"erasure {report.request_id}: {report.customers} customer(s), "
            f"{report.rows_deleted} rows from {len(report.rows_by_table)} tables, "
            f"{sum(report.rows_by_file.values())} lines from {len(report.rows_by_file)} files; "
            "verified"
        )
        context.add_output_metadata(
            {
                "request_id": report.request_id,
                "customers": report.customers,
                "rows_deleted": report.rows_deleted,
                **{f"rows_deleted.{t}": n for t, n in sorted(report.rows_by_table.items())},
                "files_rewritten": len(report.rows_by_file),
                "file_lines_deleted": sum(report.rows_by_file.values()),
            }
        )

    @job(
        name=ERASURE_JOB_NAME,
        tags=WAREHOUSE_RUN_TAG,
        description="Erase customers on request (GDPR art. 17): every owned table, tombstones "
        "for later loads, an audit row, verification. Config: customer_keys or email_hashes "
        "(or customer_ids); the seg-erase command takes ids and addresses.",
    )
    def _job() -> None:
        _erase()

    return _job


class RetentionRequest(Config):
    """The day a purge runs for: days more than the retention before it are expired."""

    as_of_date: str = Field(default="", description="YYYY-MM-DD; default: today (UTC)")


def build_retention_job(retention_days: int) -> JobDefinition:
    """The job that purges the landing files and raw rows older than ``retention_days``."""

    @op(
        name="purge_expired",
        pool=WAREHOUSE_POOL,
        description=f"Delete the landing files, raw rows and quarantine rows of days more than "
        f"{retention_days} days old (SEG_RETENTION_DAYS), audited in retention_runs.",
    )
    def _purge(
        context: OpExecutionContext,
        config: RetentionRequest,
        warehouse: Warehouse,
        landing: LandingZone,
    ) -> None:
        as_of = (
            iso_day(config.as_of_date, "as_of_date")
            if config.as_of_date
            else datetime.now(UTC).date()
        )
        with warehouse.connection() as conn:
            report = purge_expired(
                conn, landing.landing_dir, as_of, retention_days, run_id=context.run_id
            )
        context.log.info(
            f"retention: days before {report.cutoff} purged: {sum(report.rows_by_table.values())} "
            f"rows, {len(report.files)} landing files"
        )
        context.add_output_metadata(
            {
                "cutoff_date": report.cutoff.isoformat(),
                "retention_days": retention_days,
                "landing_files_deleted": len(report.files),
                **{f"rows_deleted.{t}": n for t, n in sorted(report.rows_by_table.items())},
            }
        )

    @job(
        name=RETENTION_JOB_NAME,
        tags=WAREHOUSE_RUN_TAG,
        description=f"Purge landing files and raw rows older than {retention_days} days "
        "(scheduled daily; the staging tables, features and models keep working).",
    )
    def _job() -> None:
        _purge()

    return _job


def build_retention_schedule(retention_job: JobDefinition) -> ScheduleDefinition:
    """At 04:00 UTC, after the daily run: purge what expired by today."""

    @schedule(
        name="retention_schedule",
        cron_schedule="0 4 * * *",
        job=retention_job,
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.STOPPED,
        tags=WAREHOUSE_RUN_TAG,
    )
    def _schedule(context: ScheduleEvaluationContext) -> RunRequest:
        day: date = context.scheduled_execution_time.date()
        return RunRequest(
            run_key=f"retention-{day}",
            run_config={"ops": {"purge_expired": {"config": {"as_of_date": day.isoformat()}}}},
        )

    return _schedule


def main(argv: Sequence[str] | None = None, defs: Definitions | None = None) -> int:
    """``seg-erase --customer-id C1 --email a@example.com``: run the erasure job in this
    process, recorded in the Dagster instance (``DAGSTER_HOME``) like a run from the UI."""
    parser = argparse.ArgumentParser(prog="seg-erase", description=__doc__.splitlines()[0])
    parser.add_argument("--customer-id", action="append", default=[], dest="customer_ids")
    parser.add_argument("--email", action="append", default=[], dest="emails")
    parser.add_argument("--customer-key", action="append", default=[], dest="customer_keys")
    parser.add_argument("--request-id", default="")
    args = parser.parse_args(argv)
    if not (args.customer_ids or args.emails or args.customer_keys):
        parser.error("name at least one --customer-id, --email or --customer-key")
    if defs is None:
        from seg_pipeline.definitions import defs as loaded

        defs = loaded
    # resolved: the resource's key is an EnvVar until Dagster (or this) reads the environment
    warehouse: Warehouse = defs.resources["warehouse"].process_config_and_initialize()
    with warehouse.connection() as conn:
        keys = keyed_hashes(conn, [c.strip() for c in args.customer_ids if c.strip()])
        email_hashes = keyed_hashes(conn, [e.strip().lower() for e in args.emails if e.strip()])
    config = ErasureRequest(
        customer_keys=[*keys, *args.customer_keys],
        email_hashes=email_hashes,
        request_id=args.request_id,
    )
    result = defs.resolve_job_def(ERASURE_JOB_NAME).execute_in_process(
        run_config={"ops": {"erase_customers": {"config": config.model_dump()}}},
        instance=DagsterInstance.get(),
        raise_on_error=False,
    )
    if not result.success:
        print("erasure failed; see the run in the Dagster UI", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
