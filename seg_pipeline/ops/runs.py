"""Run the daily job over a date range in this process, as one single-run backfill."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from dagster import AssetKey, DagsterInstance, Definitions, ExecuteInProcessResult
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from seg_pipeline.ops.schedules import DAILY_JOB_NAME


def run_daily_range(
    defs: Definitions,
    start: date,
    end: date,
    instance: DagsterInstance | None = None,
    raise_on_error: bool = True,
    log_level: str = "DEBUG",
    assets: Sequence[str] | None = None,
    op_config: Mapping[str, Any] | None = None,
) -> ExecuteInProcessResult:
    """Materialize every daily asset (or only ``assets``, with their checks) for partitions
    [start, end] in one run.

    ``instance`` defaults to an ephemeral one; pass ``DagsterInstance.get()`` to record the run
    where the UI shows it. ``op_config`` is run config per asset, e.g.
    ``{"segmentation_model": {"force_refit": True}}``.
    """
    job = defs.resolve_job_def(DAILY_JOB_NAME)
    return job.execute_in_process(
        instance=instance or DagsterInstance.ephemeral(),
        tags={
            ASSET_PARTITION_RANGE_START_TAG: start.isoformat(),
            ASSET_PARTITION_RANGE_END_TAG: end.isoformat(),
        },
        run_config={
            "loggers": {"console": {"config": {"log_level": log_level}}},
            "ops": {name: {"config": dict(cfg)} for name, cfg in (op_config or {}).items()},
        },
        raise_on_error=raise_on_error,
        asset_selection=[AssetKey(a) for a in assets] if assets else None,
    )
