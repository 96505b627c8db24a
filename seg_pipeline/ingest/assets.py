"""raw_<source> assets, one per source, made by one factory."""

from contextlib import nullcontext

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    DailyPartitionsDefinition,
    MaterializeResult,
    asset,
)

from seg_pipeline.assets_common import code_version, tables_metadata, warehouse_asset_options
from seg_pipeline.ingest.loaders import (
    delete_window,
    ensure_raw_tables,
    load_file,
)
from seg_pipeline.metadata import window_metadata
from seg_pipeline.partitions import days_between, window_dates
from seg_pipeline.privacy.erasure import drop_erased_rows
from seg_pipeline.privacy.vault import Vault
from seg_pipeline.quality.quarantine import QUARANTINE_TABLE, QualityPolicy
from seg_pipeline.resources import LandingZone, Warehouse, transaction
from seg_pipeline.settings import SQL_DIR
from seg_pipeline.sources import RAW_PARTITION_COLUMN, SOURCES, Source


def build_raw_asset(source: Source, partitions_def: DailyPartitionsDefinition) -> AssetsDefinition:
    """The asset that loads ``source``'s daily files into ``raw_<source>``."""

    @asset(
        name=source.raw_table,
        kinds={"duckdb", source.file_format},
        **warehouse_asset_options("raw", partitions_def),
        # the file contract and the load's SQL files (not the loader's Python)
        code_version=code_version(
            repr(source), *(p.read_text() for p in sorted((SQL_DIR / "ingest").glob("*.sql")))
        ),
        metadata=tables_metadata(source.raw_table, QUARANTINE_TABLE),
        description=(
            f"{source.description} Loaded as delivered from "
            f"`<landing>/{source.name}/<day>.{source.extension}` (text columns kept as text); "
            "unparseable lines go to the quarantine table. Re-materializing a partition replaces "
            "exactly that day's rows in one transaction; a missing file fails the run."
            + (
                f" Personal columns ({', '.join(source.personal)}) are sealed into the vault "
                "(one data key per customer) in the same step; this table keeps their keyed "
                f"hashes and derived values ({', '.join(source.pseudonyms)})."
                if source.personal
                else ""
            )
        ),
        required_resource_keys={"warehouse", "landing", "quality"}
        | ({"vault"} if source.personal else set()),
    )
    def _raw(context: AssetExecutionContext) -> MaterializeResult:
        warehouse: Warehouse = context.resources.warehouse
        landing: LandingZone = context.resources.landing
        quality: QualityPolicy = context.resources.quality
        vault: Vault | None = context.resources.vault if source.personal else None
        start, end = window_dates(context)
        results = []
        with (
            warehouse.connection() as conn,
            vault.attached(conn) if vault else nullcontext() as sealed,
            transaction(conn),
        ):
            ensure_raw_tables(conn, source)
            delete_window(conn, source, start, end)
            for day in days_between(start, end):
                path = landing.path_for(source, day)
                results.append(
                    load_file(conn, source, path, day, quality.max_wrong_day_share, vault=sealed)
                )
            erased = drop_erased_rows(conn, source.raw_table, start, end)
            meta = window_metadata(conn, source.raw_table, RAW_PARTITION_COLUMN, start, end)
        rejected = sum(r.rows_rejected for r in results)
        extra = sorted({c for r in results for c in r.extra_columns})
        context.log.info(
            f"{source.raw_table}: {len(results)} file(s), "
            f"{sum(r.rows_loaded for r in results)} rows, {rejected} rejected lines"
        )
        return MaterializeResult(
            metadata={
                **meta,
                "files_loaded": len(results),
                "rejected_lines": rejected,
                "extra_columns_ignored": ", ".join(extra) or "none",
                "rows_of_erased_customers_dropped": erased,
            }
        )

    return _raw


def build_raw_assets(partitions_def: DailyPartitionsDefinition) -> list[AssetsDefinition]:
    return [build_raw_asset(source, partitions_def) for source in SOURCES]
