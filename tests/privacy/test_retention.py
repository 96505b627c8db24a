"""Retention on the generated month: the job purges the landing files and raw rows of expired
days, audits it, changes nothing more when run again, and the pipeline keeps working on the
retained window."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from pathlib import Path

import polars as pl
from dagster import DagsterInstance
from polars.testing import assert_frame_equal

from seg_pipeline.definitions import build_definitions
from seg_pipeline.privacy.jobs import RETENTION_JOB_NAME
from seg_pipeline.settings import Settings
from seg_pipeline.sources import SOURCES
from tests.conftest import MONTH_END, MONTH_START, own_files, run_range, warehouse_for

CUTOFF = date(2026, 1, 21)  # 10 days of retention on the month's last day


def _days_per_table(settings: Settings) -> pl.DataFrame:
    """Rows per (table, day) of the raw tables and the quarantine."""
    parts = [
        f"SELECT '{s.raw_table}' AS t, _partition_date AS day, count(*) AS n "
        f"FROM {s.raw_table} GROUP BY ALL"
        for s in SOURCES
    ] + [
        "SELECT 'quarantine' AS t, arrival_date AS day, count(*) AS n FROM quarantine GROUP BY ALL"
    ]
    return warehouse_for(settings).query(" UNION ALL ".join(parts) + " ORDER BY t, day")


def _of_day(settings: Settings, table: str, day: date) -> pl.DataFrame:
    return warehouse_for(settings).query(
        f"SELECT * FROM {table} WHERE as_of_date = '{day}' ORDER BY ALL"
    )


def _landing_days(settings: Settings) -> dict[str, list[date]]:
    return {
        s.name: sorted(
            date.fromisoformat(p.stem)
            for p in (settings.landing_dir / s.name).glob(f"*.{s.extension}")
        )
        for s in SOURCES
    }


def test_retention_purges_expired_days_and_the_pipeline_runs_on_what_is_kept(
    loaded_settings: Settings, tmp_path: Path
) -> None:
    settings = replace(own_files(loaded_settings, tmp_path / "data"), retention_days=10)
    before = _days_per_table(settings)
    features = _of_day(settings, "customer_features", MONTH_END)
    segments = _of_day(settings, "customer_segments", MONTH_END)
    assert min(min(days) for days in _landing_days(settings).values()) < CUTOFF

    defs = build_definitions(settings)
    purge = defs.resolve_job_def(RETENTION_JOB_NAME)
    config = {"ops": {"purge_expired": {"config": {"as_of_date": MONTH_END.isoformat()}}}}
    assert purge.execute_in_process(run_config=config, instance=DagsterInstance.ephemeral()).success

    # expired landing files gone, the rest kept
    for source, days in _landing_days(settings).items():
        assert days and days[0] >= CUTOFF, source
        assert days[-1] == MONTH_END, source
    # expired raw and quarantine rows gone, the kept days' rows untouched
    after = _days_per_table(settings)
    assert after.filter(pl.col("day") < CUTOFF).is_empty()
    assert_frame_equal(after, before.filter(pl.col("day") >= CUTOFF))
    expired = before.filter(pl.col("day") < CUTOFF)
    assert expired.height > 0

    # audited: cut-off, rows per table, the files
    (audit,) = warehouse_for(settings).query("SELECT * FROM retention_runs").to_dicts()
    assert (audit["cutoff_date"], audit["retention_days"]) == (CUTOFF, 10)
    per_table = expired.group_by("t").agg(pl.col("n").sum())
    assert json.loads(audit["tables"]) == {
        **{s.raw_table: 0 for s in SOURCES},
        "quarantine": 0,
        **dict(per_table.iter_rows()),
    }
    files = json.loads(audit["files"])
    assert len(files) == sum((CUTOFF - MONTH_START).days for _ in SOURCES)
    assert not any(Path(f).exists() for f in files)

    # again: nothing more goes
    assert purge.execute_in_process(run_config=config, instance=DagsterInstance.ephemeral()).success
    assert_frame_equal(_days_per_table(settings), after)
    second = warehouse_for(settings).query(
        "SELECT tables, files FROM retention_runs ORDER BY purged_at DESC LIMIT 1"
    )
    assert set(json.loads(second["tables"].item()).values()) == {0}
    assert json.loads(second["files"].item()) == []

    # the last day, loaded and built again on the retained window, gives the same features
    # and segments
    rebuilt = [
        *(s.raw_table for s in SOURCES),
        *(s.staging_table for s in SOURCES),
        "web_session_fragments",
        "customer_feature_state",
        "customer_features",
        "segmentation_model",
        "customer_segments",
    ]
    assert run_range(defs, MONTH_END, MONTH_END, assets=rebuilt).success
    assert_frame_equal(_of_day(settings, "customer_features", MONTH_END), features)
    assert_frame_equal(
        _of_day(settings, "customer_segments", MONTH_END).drop("computed_at", strict=False),
        segments.drop("computed_at", strict=False),
    )

    # an expired day cannot be loaded again, and the error says why
    expired_day = date(2026, 1, 5)
    failed = run_range(defs, expired_day, expired_day, raise_on_error=False, assets=["raw_orders"])
    assert not failed.success
    (failure,) = failed.get_step_failure_events()
    assert (
        f"retention purged the days before {CUTOFF}" in failure.step_failure_data.error.to_string()
    )
