"""A snapshot of the code location's structure: a lost, renamed or rewired asset, check, job,
schedule, sensor or resource shows as a reviewed diff of ``snapshots/code_location.json``.

After an intended change: ``UPDATE_SNAPSHOTS=1 pytest tests/pipeline/test_code_location.py``,
then review and commit the JSON diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from dagster import Definitions

from seg_pipeline.definitions import build_definitions
from seg_pipeline.settings import Settings

SNAPSHOT = Path(__file__).parent / "snapshots" / "code_location.json"


def code_location(defs: Definitions) -> dict[str, Any]:
    """The structure of ``defs`` as sorted, JSON-ready data (no paths, no times)."""
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "kinds": sorted(node.kinds),
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "partitioned": node.partitions_def is not None,
            "backfill": str(node.backfill_policy.policy_type) if node.backfill_policy else None,
            "pools": sorted(node.pools or []),
            "checks": sorted(k.name for k in node.check_keys),
        }
    checks = {}
    for check_key in sorted(graph.asset_check_keys, key=lambda k: k.to_user_string()):
        spec = graph.get_check_spec(check_key)
        checks[check_key.to_user_string()] = {"blocking": bool(spec.blocking)}
    jobs = {}
    for job in sorted(defs.resolve_all_job_defs(), key=lambda j: j.name):
        if job.name.startswith("__"):
            continue
        selected = job.asset_layer.executable_asset_keys if job.asset_layer else set()
        jobs[job.name] = {
            "assets": sorted(k.to_user_string() for k in selected),
            "tags": dict(sorted(job.tags.items())),
        }
    schedules = {
        s.name: {"cron": s.cron_schedule, "job": s.job_name, "status": str(s.default_status)}
        for s in sorted(
            (defs.resolve_schedule_def(u.name) for u in defs.schedules or []),
            key=lambda s: s.name,
        )
    }
    sensors = {
        s.name: {"type": type(s).__name__, "status": str(s.default_status)}
        for s in sorted(
            (defs.resolve_sensor_def(u.name) for u in defs.sensors or []),
            key=lambda s: s.name,
        )
    }
    return {
        "assets": assets,
        "checks": checks,
        "jobs": jobs,
        "schedules": schedules,
        "sensors": sensors,
        "resources": sorted(defs.resources or {}),
    }


def test_the_code_location_matches_its_snapshot(tmp_path: Path) -> None:
    truth = tmp_path / "truth"
    truth.mkdir()  # generated data: the evaluation checks are part of the location
    settings = Settings.from_env(
        {"SEG_DATA_DIR": str(tmp_path), "SEG_PARTITIONS_START": "2026-01-01"}
    )
    current = json.dumps(code_location(build_definitions(settings)), indent=2) + "\n"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(current, encoding="utf-8")
    assert SNAPSHOT.exists(), "no snapshot yet: run with UPDATE_SNAPSHOTS=1 and review it"
    assert current == SNAPSHOT.read_text(encoding="utf-8"), (
        "the code location changed; if intended, run with UPDATE_SNAPSHOTS=1 and review the diff"
    )


def test_the_truth_checks_exist_only_beside_generated_data(tmp_path: Path) -> None:
    settings = Settings.from_env({"SEG_DATA_DIR": str(tmp_path)})
    checks = code_location(build_definitions(settings))["checks"]
    assert "customer_segments:segments_recover_planted_personas" not in checks
    assert "raw_orders:raw_orders_expectations" in checks
