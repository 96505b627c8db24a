"""What every partitioned warehouse asset shares: owners, pool, backfill policy, freshness,
code versions."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from dagster import BackfillPolicy, FreshnessPolicy

OWNERS = ["team:data-engineering"]
# Every step that writes the DuckDB file runs in this pool; dagster.yaml lets one run that uses
# it go at a time (granularity: run), because DuckDB allows one writing process per file.
WAREHOUSE_POOL = "duckdb_warehouse"
# A backfill of any date range is one run with one transaction per asset.
SINGLE_RUN = BackfillPolicy.single_run()


# Every daily table is due by 06:00 UTC (the daily schedule starts at 02:30): a table not
# materialized in the 24 hours before shows as overdue in the UI, so a missed day is seen.
DAILY_FRESHNESS = FreshnessPolicy.cron(
    deadline_cron="0 6 * * *", lower_bound_delta=timedelta(hours=24)
)


def code_version(*texts: str) -> str:
    """An asset's code version from the texts that define what it computes (its SQL files,
    its function's source): when one changes, Dagster shows the asset's partitions as unsynced
    (and automation conditions can act on it); when none did, re-running is not needed."""
    return hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:12]


# Definition metadata naming the warehouse tables an asset writes (comma-separated): the
# erasure job finds every table that may hold a customer's rows from the asset specs.
TABLES_METADATA_KEY = "seg/tables"


def tables_metadata(*tables: str) -> dict[str, str]:
    """Definition metadata of an asset that writes ``tables`` (see :data:`TABLES_METADATA_KEY`)."""
    return {TABLES_METADATA_KEY: ", ".join(tables)}


def warehouse_asset_options(group: str, partitions_def: Any) -> dict[str, Any]:
    """Keyword arguments every daily warehouse asset of ``group`` shares: owners, the daily
    partitions, single-run backfills, the warehouse pool and the daily freshness policy."""
    return {
        "group_name": group,
        "owners": OWNERS,
        "partitions_def": partitions_def,
        "backfill_policy": SINGLE_RUN,
        "pool": WAREHOUSE_POOL,
        "freshness_policy": DAILY_FRESHNESS,
    }
