"""What every partitioned warehouse asset shares: owners, pool, backfill policy."""

from __future__ import annotations

from typing import Any

from dagster import BackfillPolicy

OWNERS = ["team:data-engineering"]
# Every step that writes the DuckDB file runs in this pool; dagster.yaml lets one run that uses
# it go at a time (granularity: run), because DuckDB allows one writing process per file.
WAREHOUSE_POOL = "duckdb_warehouse"
# A backfill of any date range is one run with one transaction per asset.
SINGLE_RUN = BackfillPolicy.single_run()


# Definition metadata naming the warehouse tables an asset writes (comma-separated): the
# erasure job finds every table that may hold a customer's rows from the asset specs.
TABLES_METADATA_KEY = "seg/tables"


def tables_metadata(*tables: str) -> dict[str, str]:
    """Definition metadata of an asset that writes ``tables`` (see :data:`TABLES_METADATA_KEY`)."""
    return {TABLES_METADATA_KEY: ", ".join(tables)}


def warehouse_asset_options(group: str, partitions_def: Any) -> dict[str, Any]:
    """Keyword arguments every daily warehouse asset of ``group`` shares: owners, the daily
    partitions, single-run backfills and the warehouse pool."""
    return {
        "group_name": group,
        "owners": OWNERS,
        "partitions_def": partitions_def,
        "backfill_policy": SINGLE_RUN,
        "pool": WAREHOUSE_POOL,
    }
