"""Drift on generated data: a month whose browsing changes from a given day, the model_drift
table, the drift sensor against a real instance and warehouse, and the minimum history.

One generation (500 customers, 35 days, web sessions ten times as frequent from 2026-01-30)
is built once: the pipeline up to Jan 29 (the stable period: the landing files before the
shift are those of the same month without it) and on to Feb 4.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from dagster import DagsterInstance, Definitions, build_sensor_context
from dagster._core.definitions.sensor_definition import SensorExecutionData

from seg_pipeline.definitions import build_definitions
from seg_pipeline.generator import GeneratorConfig, generate
from seg_pipeline.ops.drift import (
    DRIFT_FEATURES_TAG,
    DRIFT_MODEL_VERSION_TAG,
    SENSOR_NAME,
)
from seg_pipeline.ops.schedules import REFIT_JOB_NAME
from seg_pipeline.resources import Warehouse, query_frame
from seg_pipeline.segmentation.config import SegmentationConfig
from seg_pipeline.settings import Settings
from tests.conftest import TEST_KEY, built_once, run_range, set_test_keys

START, END = date(2026, 1, 1), date(2026, 2, 4)
SHIFT = date(2026, 1, 30)
STABLE_END = SHIFT - timedelta(days=1)
GROUPS = ("raw", "staging", "privacy", "features", "segmentation", "monitoring")


def _generator(root: Path, **changes: Any) -> GeneratorConfig:
    settings: dict[str, Any] = {
        "landing_dir": root / "landing",
        "truth_dir": root / "truth",
        "start_date": START,
        "end_date": END,
        "n_customers": 500,
        "seed": 11,
        "messiness": 0.02,
    }
    return GeneratorConfig(**(settings | changes))


SHIFTED = {"shift_date": SHIFT, "shift_kind": "session_rate", "shift_factor": 10.0}


def _settings(root: Path, warehouse: str = "warehouse.duckdb") -> Settings:
    return Settings.from_env(
        {
            "SEG_DATA_DIR": str(root),
            "SEG_WAREHOUSE": str(root / warehouse),
            "SEG_PARTITIONS_START": START.isoformat(),
        }
    )


def _assets(defs: Definitions) -> list[str]:
    return [
        key.to_user_string()
        for assets in defs.assets  # type: ignore[union-attr]
        for key in assets.keys
        if assets.group_names_by_key[key] in GROUPS
    ]


@pytest.fixture(scope="session")
def drift_month(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shifted month's folder: ``stable.duckdb`` (up to the day before the shift) and
    ``warehouse.duckdb`` (up to the last day), sharing the model folder."""
    set_test_keys()

    def build(root: Path) -> None:
        generate(_generator(root, **SHIFTED))
        defs = build_definitions(_settings(root))
        assert run_range(defs, START, STABLE_END, assets=_assets(defs)).success
        shutil.copy(root / "warehouse.duckdb", root / "stable.duckdb")
        assert run_range(defs, SHIFT, END, assets=_assets(defs)).success

    return built_once(tmp_path_factory, "drift_month", build)


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with DagsterInstance.ephemeral() as instance:
        yield instance


def _own_copy(drift_month: Path, tmp_path: Path, name: str = "warehouse.duckdb") -> Path:
    target = tmp_path / "warehouse.duckdb"
    shutil.copy(drift_month / name, target)
    return target


def _tick(
    defs: Definitions, instance: DagsterInstance, warehouse: Path, cursor: str | None = None
) -> SensorExecutionData:
    sensor = defs.resolve_sensor_def(SENSOR_NAME)
    context = build_sensor_context(
        instance=instance,
        cursor=cursor,
        definitions=defs,
        resources={"warehouse": Warehouse(database=str(warehouse), pseudonymisation_key=TEST_KEY)},
    )
    return sensor.evaluate_tick(context)


def _read(warehouse: Path, sql: str, params: dict | None = None) -> pl.DataFrame:
    with Warehouse(database=str(warehouse), pseudonymisation_key=TEST_KEY).connection() as conn:
        return query_frame(conn, sql, params or {})


def test_the_days_before_the_shift_are_those_of_the_month_without_it(
    drift_month: Path, tmp_path: Path
) -> None:
    generate(_generator(tmp_path, end_date=STABLE_END))
    for path in sorted((tmp_path / "landing").rglob("*.*")):
        shifted = drift_month / "landing" / path.relative_to(tmp_path / "landing")
        assert shifted.read_bytes() == path.read_bytes(), path.name


def test_model_drift_measures_the_shift(drift_month: Path, tmp_path: Path) -> None:
    drift = _read(
        _own_copy(drift_month, tmp_path),
        "SELECT * FROM model_drift ORDER BY as_of_date, feature",
    )
    print(
        "\n"
        + str(
            drift.filter(pl.col("as_of_date").is_in([STABLE_END - timedelta(days=1), END]))
            .select("as_of_date", "model_version", "reference_date", "feature", "psi")
            .to_dicts()
        )
    )
    features = set(SegmentationConfig().features) | {"segment_shares"}
    last = drift.filter(pl.col("as_of_date") == END)
    assert set(last["feature"]) == features
    assert (last["reference_date"] <= SHIFT - timedelta(days=1)).all()  # fitted before the shift
    drifted = last.filter(pl.col("drifted"))
    assert "count_sessions_30d" in drifted["feature"].to_list()
    # before the shift, within each model's week, nothing drifts
    stable = drift.filter(pl.col("as_of_date") <= STABLE_END)
    assert stable.height and not stable["drifted"].any()
    assert stable["psi"].max() < 0.15
    # the minimum history: no model, hence no drift rows, before 14 days of features
    assert drift["as_of_date"].min() == START + timedelta(days=14)


def test_the_sensor_requests_one_refit_for_the_shift_and_the_refit_settles_it(
    drift_month: Path, tmp_path: Path, instance: DagsterInstance
) -> None:
    warehouse = _own_copy(drift_month, tmp_path)
    settings = replace(_settings(drift_month), warehouse_path=warehouse)
    defs = build_definitions(settings)
    first = _tick(defs, instance, warehouse)
    assert first.skip_message is None, first.skip_message
    (request,) = first.run_requests or []
    assert request.job_name == REFIT_JOB_NAME
    assert request.partition_key == END.isoformat()
    tags = request.tags
    pairs = dict(p.split("=") for p in tags[DRIFT_FEATURES_TAG].split(","))
    assert "count_sessions_30d" in pairs and float(pairs["count_sessions_30d"]) > 0.2
    version = _read(
        warehouse, "SELECT model_version FROM segmentation_model WHERE as_of_date = $d", {"d": END}
    ).item()
    assert tags[DRIFT_MODEL_VERSION_TAG] == version
    print(f"\nrequest tags {tags}")
    # the next tick does not request it again
    again = _tick(defs, instance, warehouse, first.cursor)
    assert not again.run_requests
    assert "requested already" in (again.skip_message or "")
    # the refit run the sensor asked for: the new model is measured against its own day
    result = defs.resolve_job_def(REFIT_JOB_NAME).execute_in_process(
        instance=instance, partition_key=request.partition_key, tags=tags
    )
    assert result.success
    after = _tick(defs, instance, warehouse, again.cursor)
    assert not after.run_requests
    assert "no drift" in (after.skip_message or "")


def test_a_stable_period_requests_nothing(
    drift_month: Path, tmp_path: Path, instance: DagsterInstance
) -> None:
    warehouse = _own_copy(drift_month, tmp_path, "stable.duckdb")
    defs = build_definitions(replace(_settings(drift_month), warehouse_path=warehouse))
    tick = _tick(defs, instance, warehouse)
    assert not tick.run_requests
    assert "no drift on 2026-01-29" in (tick.skip_message or ""), tick.skip_message


def test_a_busy_warehouse_skips_the_tick(
    drift_month: Path, tmp_path: Path, instance: DagsterInstance
) -> None:
    warehouse = _own_copy(drift_month, tmp_path)
    defs = build_definitions(replace(_settings(drift_month), warehouse_path=warehouse))
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time\n"
            f"conn = duckdb.connect({str(warehouse)!r})\n"
            "print('open', flush=True)\n"
            "time.sleep(120)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "open"
        tick = _tick(defs, instance, warehouse)
    finally:
        writer.kill()
        writer.wait()
    assert not tick.run_requests
    assert "cannot be read now" in (tick.skip_message or ""), tick.skip_message


def test_the_first_model_waits_for_the_minimum_history_and_its_ids_start_at_one(
    drift_month: Path, tmp_path: Path
) -> None:
    warehouse = _own_copy(drift_month, tmp_path)
    first_model = START + timedelta(days=SegmentationConfig().min_history_days)
    days = _read(warehouse, "SELECT * FROM segmentation_model ORDER BY as_of_date")
    assert days["as_of_date"].min() == START  # a row every day ...
    early = days.filter(pl.col("as_of_date") < first_model)
    assert early.height == 14 and early["model_version"].null_count() == 14  # ... no model
    fitted = days.filter(pl.col("refitted"))
    assert fitted["as_of_date"][0] == first_model
    assert fitted["refit_reason"][0] == "no model yet"
    registry = _read(
        warehouse,
        "SELECT min(training_end) AS first FROM model_registry WHERE kind = 'segmentation'",
    )
    assert registry["first"][0] == first_model
    segments = _read(
        warehouse,
        "SELECT as_of_date, min(segment_id) AS lo, max(segment_id) AS hi, "
        "count(DISTINCT segment_id) AS k FROM customer_segments GROUP BY ALL ORDER BY 1",
    )
    assert segments["as_of_date"].min() == first_model  # no segments before
    one = segments.row(0, named=True)
    assert (one["lo"], one["hi"]) == (1, one["k"])  # the first model's segments are 1..k
