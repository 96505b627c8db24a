"""The code location: one Definitions object with every stage's assets, jobs and resources."""

from __future__ import annotations

from dagster import Definitions, EnvVar, in_process_executor

from seg_pipeline.features.assets import build_feature_assets
from seg_pipeline.ingest.assets import build_raw_assets
from seg_pipeline.ops.recovery import warehouse_recovery_sensor
from seg_pipeline.ops.schedules import (
    build_daily_job,
    build_daily_schedule,
    build_refit_segmentation_job,
)
from seg_pipeline.partitions import daily_partitions
from seg_pipeline.quality.checks import build_quality_checks
from seg_pipeline.quality.quarantine import QualityPolicy
from seg_pipeline.resources import LandingZone, Warehouse
from seg_pipeline.segmentation.assets import (
    SegmentationSettings,
    build_segmentation_assets,
    build_segmentation_checks,
)
from seg_pipeline.settings import PSEUDONYMISATION_KEY_ENV, Settings
from seg_pipeline.staging.assets import build_staging_assets
from seg_pipeline.warehouse_lock import lock_timeout_from_env


def build_definitions(
    settings: Settings, segmentation: SegmentationSettings | None = None
) -> Definitions:
    """Everything Dagster needs, wired to ``settings``' paths (and optional segmentation
    settings other than the defaults)."""
    partitions_def = daily_partitions(settings.partitions_start)
    daily_job = build_daily_job()
    return Definitions(
        assets=[
            *build_raw_assets(partitions_def),
            *build_staging_assets(partitions_def),
            *build_feature_assets(partitions_def),
            *build_segmentation_assets(partitions_def, settings.data_dir / "plots"),
        ],
        asset_checks=[
            *build_quality_checks(partitions_def),
            *build_segmentation_checks(partitions_def, settings.truth_dir),
        ],
        jobs=[daily_job, build_refit_segmentation_job()],
        schedules=[build_daily_schedule(daily_job)],
        sensors=[warehouse_recovery_sensor],
        resources={
            "warehouse": Warehouse(
                database=str(settings.warehouse_path),
                pseudonymisation_key=EnvVar(PSEUDONYMISATION_KEY_ENV),
                lock_timeout_seconds=lock_timeout_from_env(),
            ),
            "landing": LandingZone(landing_dir=str(settings.landing_dir)),
            "quality": QualityPolicy(),
            "segmentation": segmentation or SegmentationSettings(),
        },
        # DuckDB allows one writing process per file: the steps of a run share one process.
        executor=in_process_executor,
    )


defs = build_definitions(Settings.from_env())
