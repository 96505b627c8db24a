"""Staging assets: each is one SQL file, ``sql/staging/<name>.sql``, run over a date window.

The SQL selects the window's rows (dates bound as ``$start_date``/``$end_date``) with the row
rules each breaks; :func:`seg_pipeline.staging.stage.stage_window` writes the good rows to the
table and the bad ones to the quarantine, replacing exactly the window in one transaction.
"""

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    DailyPartitionsDefinition,
    MaterializeResult,
    asset,
)

from seg_pipeline.assets_common import code_version, tables_metadata, warehouse_asset_options
from seg_pipeline.metadata import window_metadata
from seg_pipeline.partitions import window_dates
from seg_pipeline.quality.quarantine import QUARANTINE_TABLE, QualityPolicy, format_counts
from seg_pipeline.resources import Warehouse, read_sql
from seg_pipeline.staging.models import MODELS, StagingModel
from seg_pipeline.staging.stage import PARTITION_COLUMN, stage_window

__all__ = ["MODELS", "StagingModel", "build_staging_asset", "build_staging_assets"]


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
        kinds={"duckdb", "sql"},
        **warehouse_asset_options(model.group, partitions_def),
        code_version=code_version(sql),
        deps=[AssetKey(model.raw_table), *(AssetKey(d) for d in model.deps)],
        metadata=tables_metadata(model.table, QUARANTINE_TABLE),
        description=f"{sql_description(sql)} Source: sql/{model.sql_name}.sql.",
    )
    def _staging(
        context: AssetExecutionContext, warehouse: Warehouse, quality: QualityPolicy
    ) -> MaterializeResult:
        start, end = window_dates(context)
        with warehouse.connection() as conn:
            outcome = stage_window(
                conn,
                sql=sql,
                table=model.table,
                source=model.quarantine_source,
                start=start,
                end=end,
                policy=quality,
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
                **({"late_rows": outcome.late_rows} if model.dated else {}),
            }
        )

    return _staging


def build_staging_assets(partitions_def: DailyPartitionsDefinition) -> list[AssetsDefinition]:
    return [build_staging_asset(model, partitions_def) for model in MODELS]
