"""The monitoring stage's daily table: ``model_drift``, made by the one factory."""

from __future__ import annotations

from dagster import AssetsDefinition, DailyPartitionsDefinition

from seg_pipeline.monitoring import drift
from seg_pipeline.tables import DailyTable, daily_table_asset

GROUP = "monitoring"

MODEL_DRIFT_TABLE = DailyTable(
    name="model_drift",
    group=GROUP,
    kinds=("matplotlib",),
    deps=("segmentation_model", "customer_segments", "customer_features"),
    description=(
        "Per day, for the segmentation model in force: the population stability index "
        "(PSI) of each model feature between the model's fit day and the day (deciles of "
        "the fit day's customer_features as fixed bins, nulls a bin of their own), and of "
        "the customers' segment shares (feature segment_shares); drifted when the PSI is "
        "above the drift resource's psi_threshold (0.2). The sensor drift_retraining_sensor "
        "requests a refit for a drifted model. No rows on days without a model (before the "
        "minimum history). Plot: PSI per feature with the threshold."
    ),
    compute=drift.model_drift_rows,
    resources=("models", "drift", "plots"),
    summarize=drift.summarize_drift,
    columns=drift.DRIFT_COLUMNS,
)


def build_monitoring_assets(partitions_def: DailyPartitionsDefinition) -> list[AssetsDefinition]:
    """The monitoring assets on the shared daily partitions."""
    return [daily_table_asset(MODEL_DRIFT_TABLE, partitions_def)]
