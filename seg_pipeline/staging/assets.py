"""Staging assets: each is one SQL file, ``sql/staging/<name>.sql``, run over a date window.

The SQL selects the window's rows (dates bound as ``$start_date``/``$end_date``); the warehouse
replaces exactly those partitions of the target table in one transaction.
"""

from dataclasses import dataclass

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    DailyPartitionsDefinition,
    MaterializeResult,
    asset,
)

from seg_pipeline.assets_common import OWNERS, SINGLE_RUN, WAREHOUSE_POOL, partition_dates
from seg_pipeline.metadata import window_metadata
from seg_pipeline.resources import Warehouse, read_sql, replace_window, transaction

PARTITION_COLUMN = "arrival_date"
# (metadata label, flag column, predicate) counted per window when the table has the column.
FLAG_COUNTS = (
    ("late_rows", "is_late", "is_late"),
    ("unknown_customer_rows", "is_known_customer", "NOT is_known_customer"),
)


@dataclass(frozen=True)
class StagingModel:
    """One staging SQL file and where its rows go."""

    name: str
    table: str
    raw_table: str
    deps: tuple[str, ...] = ()
    group: str = "staging"
    preview: bool = True

    @property
    def sql_name(self) -> str:
        return f"staging/{self.name}"


MODELS: tuple[StagingModel, ...] = (
    StagingModel("stg_crm_customers", "stg_crm_customers", "raw_crm_customers"),
    StagingModel(
        "customer_pii",
        "restricted.customer_pii",
        "raw_crm_customers",
        group="privacy",
        preview=False,
    ),
    StagingModel("stg_orders", "stg_orders", "raw_orders", deps=("stg_crm_customers",)),
    StagingModel("stg_web_events", "stg_web_events", "raw_web_events", deps=("stg_crm_customers",)),
    StagingModel("stg_reviews", "stg_reviews", "raw_reviews", deps=("stg_crm_customers",)),
    StagingModel(
        "stg_campaign_sends",
        "stg_campaign_sends",
        "raw_campaign_sends",
        deps=("stg_crm_customers",),
    ),
)


def sql_description(sql: str) -> str:
    """The leading ``--`` comment block of a SQL file, as prose."""
    lines = []
    for line in sql.splitlines():
        if not line.startswith("--"):
            break
        lines.append(line.removeprefix("--").strip())
    return " ".join(lines)


def build_staging_asset(
    model: StagingModel, partitions_def: DailyPartitionsDefinition
) -> AssetsDefinition:
    """The asset that runs ``sql/staging/<model.name>.sql`` into ``model.table``."""
    sql = read_sql(model.sql_name)

    @asset(
        name=model.name,
        group_name=model.group,
        kinds={"duckdb", "sql"},
        owners=OWNERS,
        partitions_def=partitions_def,
        backfill_policy=SINGLE_RUN,
        pool=WAREHOUSE_POOL,
        deps=[AssetKey(model.raw_table), *(AssetKey(d) for d in model.deps)],
        description=f"{sql_description(sql)} Source: sql/{model.sql_name}.sql.",
    )
    def _staging(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
        start, end = partition_dates(context)
        params = {"start_date": start, "end_date": end}
        window = {"start": start, "end": end}
        with warehouse.connection() as conn, transaction(conn):
            written = replace_window(conn, model.table, sql, params, PARTITION_COLUMN, start, end)
            raw_rows = conn.execute(
                f"SELECT count(*) FROM {model.raw_table} "
                "WHERE _partition_date BETWEEN $start AND $end",
                window,
            ).fetchone()[0]
            columns = {r[0] for r in conn.execute(f"DESCRIBE {model.table}").fetchall()}
            flags = {
                label: predicate for label, column, predicate in FLAG_COUNTS if column in columns
            }
            counts = {
                label: conn.execute(
                    f"SELECT count(*) FROM {model.table} WHERE {predicate} "
                    f"AND {PARTITION_COLUMN} BETWEEN $start AND $end",
                    window,
                ).fetchone()[0]
                for label, predicate in flags.items()
            }
            meta = window_metadata(
                conn, model.table, PARTITION_COLUMN, start, end, preview=model.preview
            )
        context.log.info(f"{model.table}: {written} rows for {start}..{end}")
        return MaterializeResult(
            metadata={
                **meta,
                "raw_rows": int(raw_rows),
                "rows_removed_duplicate_or_no_key": int(raw_rows) - int(written),
                **{k: int(v) for k, v in counts.items()},
            }
        )

    return _staging


def build_staging_assets(partitions_def: DailyPartitionsDefinition) -> list[AssetsDefinition]:
    return [build_staging_asset(model, partitions_def) for model in MODELS]
