"""What every partitioned warehouse asset shares: owners, pool, backfill policy, the window."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from dagster import AssetExecutionContext, BackfillPolicy

OWNERS = ["team:data-engineering"]
# Every step that writes the DuckDB file runs in this pool; dagster.yaml limits it to 1 slot,
# because DuckDB allows one writing process per file.
WAREHOUSE_POOL = "duckdb_warehouse"
# A backfill of any date range is one run with one transaction per asset.
SINGLE_RUN = BackfillPolicy.single_run()


def warehouse_asset_options(group: str, partitions_def: Any) -> dict[str, Any]:
    """Keyword arguments every daily warehouse asset of ``group`` shares: owners, the daily
    partitions, single-run backfills and the one-slot warehouse pool."""
    return {
        "group_name": group,
        "owners": OWNERS,
        "partitions_def": partitions_def,
        "backfill_policy": SINGLE_RUN,
        "pool": WAREHOUSE_POOL,
    }


def partition_dates(context: AssetExecutionContext) -> tuple[date, date]:
    """First and last day (inclusive) of the partitions this run materializes."""
    window = context.partition_time_window
    start = window.start.date()
    end = (window.end - timedelta(days=1)).date()
    return start, end


def days_between(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]
