"""The code location: one Definitions object with every stage's assets, jobs and resources."""

from __future__ import annotations

from dagster import AssetChecksDefinition, Definitions, EnvVar, in_process_executor

from seg_pipeline.activation.assets import build_activation_assets, build_activation_checks
from seg_pipeline.activation.exports import ExportFolders
from seg_pipeline.activation.playbook import PlaybookFile, load_playbook
from seg_pipeline.features.assets import build_feature_assets
from seg_pipeline.ingest.assets import build_raw_assets
from seg_pipeline.metadata import PlotFolder
from seg_pipeline.models.store import ModelStore
from seg_pipeline.monitoring.assets import build_monitoring_assets
from seg_pipeline.monitoring.drift import DriftConfig
from seg_pipeline.ops.alerts import build_alert_sensors
from seg_pipeline.ops.drift import drift_retraining_sensor
from seg_pipeline.ops.recovery import warehouse_recovery_sensor
from seg_pipeline.ops.schedules import (
    build_daily_job,
    build_daily_schedule,
    build_refit_segmentation_job,
    build_set_champion_job,
)
from seg_pipeline.partitions import daily_partitions
from seg_pipeline.predictive.assets import build_predictive_assets
from seg_pipeline.privacy.erasure import owned_tables
from seg_pipeline.privacy.files import OwnedFiles
from seg_pipeline.privacy.jobs import (
    build_erasure_job,
    build_retention_job,
    build_retention_schedule,
)
from seg_pipeline.privacy.vault import Vault
from seg_pipeline.quality.checks import build_quality_checks
from seg_pipeline.quality.quarantine import QualityPolicy
from seg_pipeline.resources import LandingZone, Warehouse
from seg_pipeline.segmentation.assets import build_segmentation_assets
from seg_pipeline.segmentation.config import SegmentationConfig
from seg_pipeline.settings import PSEUDONYMISATION_KEY_ENV, VAULT_KEY_ENV, Settings
from seg_pipeline.staging.assets import build_staging_assets


def build_definitions(
    settings: Settings,
    segmentation: SegmentationConfig | None = None,
    drift: DriftConfig | None = None,
) -> Definitions:
    """Everything Dagster needs, wired to ``settings``' paths (and optional segmentation and
    drift settings other than the defaults).

    Where a truth folder exists (data made by the generator), the checks that compare the
    segments with the planted personas are added; nothing else reads it.
    """
    partitions_def = daily_partitions(settings.partitions_start)
    daily_job = build_daily_job()
    checks: list[AssetChecksDefinition] = [
        *build_quality_checks(partitions_def),
        *build_activation_checks(partitions_def),
    ]
    load_playbook(settings.playbook_path)  # a broken playbook fails here, naming its line
    if settings.truth_dir.is_dir():
        from seg_pipeline.evaluation.checks import build_truth_checks

        checks += build_truth_checks(partitions_def, settings.truth_dir)
    assets = [
        *build_raw_assets(partitions_def),
        *build_staging_assets(partitions_def),
        *build_feature_assets(partitions_def),
        *build_segmentation_assets(partitions_def),
        *build_predictive_assets(partitions_def),
        *build_activation_assets(partitions_def),
        *build_monitoring_assets(partitions_def),
    ]
    erasure_job = build_erasure_job(
        owned_tables(s for a in assets for s in a.specs), OwnedFiles.from_settings(settings)
    )
    retention_job = build_retention_job(settings.retention_days)
    return Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=[
            daily_job,
            build_refit_segmentation_job(),
            build_set_champion_job(),
            erasure_job,
            retention_job,
        ],
        schedules=[build_daily_schedule(daily_job), build_retention_schedule(retention_job)],
        # the alert sensors run by default: without SEG_ALERT_WEBHOOK_URL they only record
        # the drift sensor is stopped by default: it launches refits (seg_pipeline/ops/drift.py)
        sensors=[
            warehouse_recovery_sensor,
            *build_alert_sensors(settings),
            drift_retraining_sensor,
        ],
        resources={
            "warehouse": Warehouse(
                database=str(settings.warehouse_path),
                pseudonymisation_key=EnvVar(PSEUDONYMISATION_KEY_ENV),
                lock_timeout_seconds=settings.warehouse_lock_timeout_seconds,
                connection_config=settings.duckdb_config(),
            ),
            "vault": Vault(path=str(settings.vault_file), key_encryption_key=EnvVar(VAULT_KEY_ENV)),
            "landing": LandingZone(landing_dir=str(settings.landing_dir)),
            "quality": QualityPolicy(),
            "models": ModelStore(model_dir=str(settings.model_dir)),
            "plots": PlotFolder(plots_dir=str(settings.data_dir / "plots")),
            "segmentation": segmentation or SegmentationConfig(),
            "drift": drift or DriftConfig(),
            "playbook": PlaybookFile(path=str(settings.playbook_path)),
            "exports_folders": ExportFolders(
                export_dir=str(settings.export_dir or settings.data_dir / "exports"),
                delivery_dir=str(settings.delivery_dir) if settings.delivery_dir else None,
            ),
        },
        # DuckDB allows one writing process per file: the steps of a run share one process.
        executor=in_process_executor,
    )


defs = build_definitions(Settings.from_env())
