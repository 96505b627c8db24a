"""Retraining on drift: ``drift_retraining_sensor`` reads the latest ``model_drift`` partition
and, when a feature of a model drifted above the threshold, requests a refit of that model for
that day, once.

The request carries what drifted in its tags (``seg/drift_features``:
``"count_sessions_30d=0.31,segment_shares=0.24"``, the largest PSI first), so the run page says
why the model was refitted. A model version and day is requested once: the sensor's cursor
remembers the requests made (and the run key lets Dagster drop a repeat); the refit run
measures the drift again with the new model, which is then compared with its own fit day.

The sensor reads the warehouse read-only and never waits: while a run writes, DuckDB refuses a
reader, and the tick is skipped (the next one tries again).

Stopped by default: a refit changes the segments campaigns are built on, so the drift table and
its plot are watched first, and the sensor turned on once the threshold suits the data.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import duckdb
import polars as pl
from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from seg_pipeline.monitoring.drift import SEGMENTATION_KIND, drift_tag
from seg_pipeline.ops.schedules import REFIT_JOB_NAME
from seg_pipeline.resources import Warehouse, WarehouseError, query_frame, read_sql, table_exists

SENSOR_NAME = "drift_retraining_sensor"
# model_drift changes once a day (or after a refit): a tick every 15 minutes is plenty.
SENSOR_INTERVAL_SECONDS = 900
# The refit job of each model kind monitored.
REFIT_JOBS: dict[str, str] = {SEGMENTATION_KIND: REFIT_JOB_NAME}
# Requests remembered in the cursor (older ones are dropped; the run key still guards them).
REMEMBERED_REQUESTS = 100

DRIFT_FEATURES_TAG = "seg/drift_features"
DRIFT_MODEL_KIND_TAG = "seg/drift_model_kind"
DRIFT_MODEL_VERSION_TAG = "seg/drift_model_version"
DRIFT_DAY_TAG = "seg/drift_day"


def run_key(kind: str, model_version: str, day: str) -> str:
    """The one request of a drifted model version on a day."""
    return f"drift:{kind}:{model_version}:{day}"


def drift_run_requests(rows: pl.DataFrame, requested: Sequence[str] = ()) -> list[RunRequest]:
    """A refit request per model of ``rows`` (a model_drift partition) with a drifted feature,
    unless its run key is in ``requested``."""
    requests = []
    drifted = rows.filter(pl.col("drifted"))
    for (kind, version), group in drifted.group_by(
        "model_kind", "model_version", maintain_order=True
    ):
        if kind not in REFIT_JOBS:
            continue
        day = group["as_of_date"][0].isoformat()
        key = run_key(kind, version, day)
        if key in requested:
            continue
        requests.append(
            RunRequest(
                run_key=key,
                job_name=REFIT_JOBS[kind],
                partition_key=day,
                tags={
                    DRIFT_FEATURES_TAG: drift_tag(group),
                    DRIFT_MODEL_KIND_TAG: kind,
                    DRIFT_MODEL_VERSION_TAG: version,
                    DRIFT_DAY_TAG: day,
                },
            )
        )
    return requests


def latest_drift(warehouse: Warehouse) -> pl.DataFrame:
    """The rows of model_drift's latest partition (none before its first run).

    Raises
    ------
    duckdb.Error
        When the warehouse cannot be read now (a run is writing it).
    """
    with warehouse.read_only_connection() as conn:
        if not table_exists(conn, "model_drift"):
            return pl.DataFrame()
        return query_frame(conn, read_sql("monitoring/latest_drift"), {})


def _requested(cursor: str | None) -> list[str]:
    try:
        keys = json.loads(cursor) if cursor else []
    except json.JSONDecodeError:
        return []
    return [k for k in keys if isinstance(k, str)] if isinstance(keys, list) else []


@sensor(
    name=SENSOR_NAME,
    job_name=REFIT_JOB_NAME,
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.STOPPED,
    description=(
        "Requests a refit_segmentation run for the latest model_drift day when a feature of "
        "the segmentation model in force drifted above the threshold (tags: the drifted "
        "features and their PSI), once per model version and day. Stopped by default."
    ),
)
def drift_retraining_sensor(
    context: SensorEvaluationContext, warehouse: Warehouse
) -> SensorResult | SkipReason:
    try:
        rows = latest_drift(warehouse)
    except (duckdb.Error, WarehouseError) as exc:
        # DuckDB has one writer: while a run writes, a reader is refused. Next tick.
        return SkipReason(f"the warehouse cannot be read now (a run is writing it?): {exc}")
    if rows.is_empty():
        return SkipReason("model_drift has no rows yet: no model measured")
    day = rows["as_of_date"].max()
    requested = _requested(context.cursor)
    requests = drift_run_requests(rows, requested)
    if not requests:
        drifted = rows.filter(pl.col("drifted"))
        if drifted.is_empty():
            top = rows.sort("psi", descending=True).row(0, named=True)
            return SkipReason(
                f"no drift on {day}: largest PSI {top['psi']:.3f} ({top['feature']}) is not "
                f"above the threshold {top['threshold']:g}"
            )
        return SkipReason(f"the refit for the drift of {day} was requested already")
    for request in requests:
        context.log.info(
            f"drift on {day}: requesting {request.job_name} for {request.partition_key} "
            f"({request.tags[DRIFT_FEATURES_TAG]})"
        )
    keys = [*requested, *(r.run_key for r in requests if r.run_key)][-REMEMBERED_REQUESTS:]
    return SensorResult(run_requests=requests, cursor=json.dumps(keys))
