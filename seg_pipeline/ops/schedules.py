"""The daily job and its schedule: every morning, yesterday's partition."""

from __future__ import annotations

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    ScheduleDefinition,
    build_schedule_from_partitioned_job,
    define_asset_job,
)
from dagster._core.definitions.unresolved_asset_job_definition import (
    UnresolvedAssetJobDefinition,
)

# Runs that write the warehouse carry this tag; dagster.yaml lets one such run go at a time.
WAREHOUSE_RUN_TAG = {"seg/warehouse": "duckdb"}
DAILY_JOB_NAME = "daily_pipeline"
DAILY_SELECTION = AssetSelection.groups(
    "raw",
    "staging",
    "privacy",
    "features",
    "segmentation",
    "predictive",
    "activation",
    "monitoring",
)
REFIT_JOB_NAME = "refit_segmentation"
SET_CHAMPION_JOB_NAME = "set_champion"


def build_daily_job() -> UnresolvedAssetJobDefinition:
    return define_asset_job(
        name=DAILY_JOB_NAME,
        selection=DAILY_SELECTION,
        tags=WAREHOUSE_RUN_TAG,
        description=(
            "Every daily table for one day (or, as a backfill, a range of days): load, stage, "
            "check, features, review NLP, lifetime value, segments, predictive models and "
            "scores, audiences, exports and lift."
        ),
    )


def build_refit_segmentation_job() -> UnresolvedAssetJobDefinition:
    """Refit the segmentation model for the chosen day(s) now, then re-assign and re-profile,
    and measure the drift again (the new model against its own fit day: none), so that
    ``drift_retraining_sensor`` sees the refit in ``model_drift``.

    Launch it from the UI (pick the partition) or the CLI:
    ``dg launch --job refit_segmentation --partition 2026-01-31``.
    """
    return define_asset_job(
        name=REFIT_JOB_NAME,
        selection=AssetSelection.assets(
            "segmentation_model",
            "customer_segments",
            "segment_migrations",
            "segment_profiles",
            "model_drift",
        ),
        tags=WAREHOUSE_RUN_TAG,
        config={"ops": {"segmentation_model": {"config": {"force_refit": True}}}},
        description=(
            "Refit the segmentation model on request (not waiting for its age limit), by hand "
            "or by drift_retraining_sensor when the model's features drifted."
        ),
    )


def build_set_champion_job() -> UnresolvedAssetJobDefinition:
    """Make chosen model versions the champions of the chosen day(s) (manual promotion or
    rollback), then re-score the customers. The versions are run config, e.g.
    ``ops: {predictive_models: {config: {set_champion: ["20261123-churn-1a2b3c4d5e"]}}}``;
    ``SELECT kind, model_version, metrics FROM model_registry`` lists them."""
    return define_asset_job(
        name=SET_CHAMPION_JOB_NAME,
        selection=AssetSelection.assets("predictive_models", "customer_scores"),
        tags=WAREHOUSE_RUN_TAG,
        description=(
            "Make the model versions given as config (set_champion) the champions of the "
            "chosen day(s), then re-score customers: manual promotion or rollback."
        ),
    )


def build_daily_schedule(job: UnresolvedAssetJobDefinition) -> ScheduleDefinition:
    """At 02:30 UTC, materialize the partition of the day that just ended."""
    return build_schedule_from_partitioned_job(
        job,
        name="daily_pipeline_schedule",
        hour_of_day=2,
        minute_of_hour=30,
        default_status=DefaultScheduleStatus.STOPPED,
        tags=WAREHOUSE_RUN_TAG,
    )
