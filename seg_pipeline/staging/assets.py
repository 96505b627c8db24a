"""Staging assets: each is one SQL file, ``sql/staging/<name>.sql``, run over a date window.

The SQL selects the window's rows (dates bound as ``$start_date``/``$end_date``) with the row
rules each breaks; :func:`seg_pipeline.staging.stage.stage_window` writes the good rows to the
table and the bad ones to the quarantine, replacing exactly the window in one transaction.
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

from seg_pipeline.assets_common import OWNERS, SINGLE_RUN, WAREHOUSE_POOL
from seg_pipeline.metadata import window_metadata
from seg_pipeline.partitions import window_dates
from seg_pipeline.quality.quarantine import QualityPolicy, format_counts
from seg_pipeline.resources import Warehouse, read_sql
from seg_pipeline.staging.stage import PARTITION_COLUMN, stage_window

# (metadata label, predicate) counted per window on tables of dated events.
FLAG_COUNTS = (("late_rows", "is_late"),)


@dataclass(frozen=True)
class StagingModel:
    """One staging SQL file and where its rows go."""

    name: str
    table: str
    raw_table: str
    source: str | None = None  # the source whose rows it quarantines (None: no row rules)
    dated: bool = False  # rows carry a real day beside the arrival day (is_late)
    deps: tuple[str, ...] = ()
    group: str = "staging"
    preview: bool = True

    @property
    def sql_name(self) -> str:
        return f"staging/{self.name}"


CRM = ("stg_crm_customers",)
MODELS: tuple[StagingModel, ...] = (
    StagingModel("stg_crm_customers", "stg_crm_customers", "raw_crm_customers", "crm_customers"),
    StagingModel(
        "customer_pii",
        "restricted.customer_pii",
        "raw_crm_customers",
        deps=CRM,
        group="privacy",
        preview=False,
    ),
    StagingModel("stg_orders", "stg_orders", "raw_orders", "orders", True, CRM),
    StagingModel("stg_web_events", "stg_web_events", "raw_web_events", "web_events", True, CRM),
    StagingModel("stg_reviews", "stg_reviews", "raw_reviews", "reviews", True, CRM),
    StagingModel(
        "stg_campaign_sends",
        "stg_campaign_sends",
        "raw_campaign_sends",
        "campaign_sends",
        True,
        CRM,
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
    def _staging(
        context: AssetExecutionContext, warehouse: Warehouse, quality: QualityPolicy
    ) -> MaterializeResult:
        start, end = window_dates(context)
        window = {"start": start, "end": end}
        with warehouse.connection() as conn:
            outcome = stage_window(
                conn,
                sql=sql,
                table=model.table,
                source_name=model.source,
                start=start,
                end=end,
                policy=quality,
            )
            counts = (
                {
                    label: conn.execute(
                        f"SELECT count(*) FROM {model.table} WHERE {predicate} "
                        f"AND {PARTITION_COLUMN} BETWEEN $start AND $end",
                        window,
                    ).fetchone()[0]
                    for label, predicate in FLAG_COUNTS
                }
                if model.dated
                else {}
            )
            meta = window_metadata(
                conn, model.table, PARTITION_COLUMN, start, end, preview=model.preview
            )
        context.log.info(
            f"{model.table}: {outcome.rows_written} rows for {start}..{end}, "
            f"quarantined: {format_counts(outcome.quarantined.items())}"
        )
        return MaterializeResult(
            metadata={
                **meta,
                "raw_rows": outcome.rows_in,
                "rows_dropped_as_repeats": outcome.rows_redundant,
                "rows_quarantined": sum(outcome.quarantined.values()),
                "quarantined_by_rule": format_counts(outcome.quarantined.items()),
                **{k: int(v) for k, v in counts.items()},
            }
        )

    return _staging


def build_staging_assets(partitions_def: DailyPartitionsDefinition) -> list[AssetsDefinition]:
    return [build_staging_asset(model, partitions_def) for model in MODELS]
