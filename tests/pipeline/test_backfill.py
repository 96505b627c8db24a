"""Backfills of several partitions through the real Dagster CLI and the real web server, and
a backfill against the same days run one by one.

The CLI and UI tests start processes (the `dagster` CLI, `dagster dev` with its daemon) against
a DuckDB file in tmp_path, as a data engineer would, and assert that every partition lands with
no lock error.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from seg_pipeline.definitions import build_definitions
from seg_pipeline.generator import GeneratorConfig, generate
from seg_pipeline.ops.runs import run_daily_range
from seg_pipeline.segmentation.config import SegmentationConfig
from seg_pipeline.settings import REPO_ROOT, Settings
from tests.conftest import MONTH_START, TEST_KEY
from tests.helpers import warehouse_fingerprints

DAGSTER = str(Path(sys.executable).parent / "dagster")
# Every asset that writes raw and staging tables (features are left out to keep the test short;
# they write the same file the same way).
INGEST_AND_STAGING = "group:raw or group:staging"
GROUPS = {"raw", "staging"}
pytestmark = pytest.mark.slow


def _env(settings: Settings, home: Path) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "SEG_LANDING_DIR": str(settings.landing_dir),
        "SEG_WAREHOUSE": str(settings.warehouse_path),
        "SEG_PARTITIONS_START": MONTH_START.isoformat(),
        "SEG_PSEUDONYMISATION_KEY": TEST_KEY,
    }


def _cli_backfill(
    env: dict[str, str], start: date, end: date, select: str = INGEST_AND_STAGING
) -> subprocess.Popen:
    return subprocess.Popen(
        [
            DAGSTER, "asset", "materialize", "-m", "seg_pipeline.definitions",
            "--select", select,
            "--partition-range", f"{start.isoformat()}...{end.isoformat()}",
        ],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip


def _days(warehouse: Path, table: str, column: str = "arrival_date") -> set[date]:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return {r[0] for r in conn.execute(f"SELECT DISTINCT {column} FROM {table}").fetchall()}


def test_two_concurrent_cli_backfills_of_the_whole_graph_run_one_after_the_other(
    settings: Settings, tmp_path: Path
) -> None:
    """Two backfills of every asset over the same days, launched at once: both finish, one
    waiting for the other, with no lock error."""
    env = {
        **_env(settings, tmp_path / "dagster_home"),
        "SEG_DATA_DIR": str(tmp_path / "data"),  # models and exports of its own
        "SEG_TRUTH_DIR": str(tmp_path / "no_truth"),
    }
    # Create the instance's storage first, as any used instance has it (two processes creating
    # a fresh SQLite run storage at once race on its tables, which is not what this tests).
    subprocess.run([DAGSTER, "instance", "migrate"], env=env, check=True, capture_output=True)
    end = MONTH_START + timedelta(days=2)
    first = _cli_backfill(env, MONTH_START, end, "*")
    second = _cli_backfill(env, MONTH_START, end, "*")
    outputs = [p.communicate(timeout=600)[0] for p in (first, second)]
    for proc, output in zip((first, second), outputs, strict=True):
        assert proc.returncode == 0, output[-3000:]
        assert "Could not set lock" not in output
        assert "RUN_SUCCESS" in output
    expected = {MONTH_START + timedelta(days=i) for i in range(3)}
    assert _days(settings.warehouse_path, "stg_orders") == expected
    # (no segmentation model before min_history_days: the first days have features, not
    # segments)
    for table in ("customer_features", "segmentation_model"):
        assert _days(settings.warehouse_path, table, "as_of_date") == expected, table


@pytest.fixture(scope="module")
def five_days(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five generated days at 300 customers (landing and truth folders)."""
    root = tmp_path_factory.mktemp("five_days")
    generate(
        GeneratorConfig(
            landing_dir=root / "landing",
            truth_dir=root / "truth",
            start_date=MONTH_START,
            end_date=MONTH_START + timedelta(days=4),
            n_customers=300,
            seed=5,
        )
    )
    return root


def test_a_backfill_gives_the_same_tables_as_daily_runs(five_days: Path, tmp_path: Path) -> None:
    """Five days as one backfill run, and the same five days as five daily runs: every table
    of the two warehouses holds the same rows (load times, model artifact names and export
    paths aside)."""
    end = MONTH_START + timedelta(days=4)

    def settings_in(folder: Path) -> Settings:
        return Settings.from_env(
            {
                "SEG_DATA_DIR": str(folder),
                "SEG_LANDING_DIR": str(five_days / "landing"),
                "SEG_TRUTH_DIR": str(five_days / "truth"),
                "SEG_PARTITIONS_START": MONTH_START.isoformat(),
            }
        )

    # segments from the third day (the default minimum history is 14 days)
    segmentation = SegmentationConfig(min_history_days=3)
    backfilled, daily = settings_in(tmp_path / "backfill"), settings_in(tmp_path / "daily")
    assert run_daily_range(build_definitions(backfilled, segmentation), MONTH_START, end).success
    defs = build_definitions(daily, segmentation)
    for offset in range(5):
        day = MONTH_START + timedelta(days=offset)
        assert run_daily_range(defs, day, day).success
    one, many = (warehouse_fingerprints(s.warehouse_path) for s in (backfilled, daily))
    assert one.keys() == many.keys()
    assert one["main.customer_segments"][0] > 0  # segments were made, and compared
    assert {t for t in one if one[t] != many[t]} == set()


def _run_failures(home: Path, run_ids: list[str]) -> list[str]:
    """What failed in the given runs, read from the instance's event log."""
    from dagster import DagsterInstance

    with DagsterInstance.from_config(str(home)) as instance:
        return [
            f"{e.step_key}: {e.dagster_event.message if e.dagster_event else e.user_message}"
            for run_id in run_ids
            for e in instance.all_logs(run_id)
            if e.dagster_event
            and e.dagster_event.event_type_value in {"STEP_FAILURE", "RUN_FAILURE", "ENGINE_EVENT"}
            and ("fail" in (e.dagster_event.message or "").lower() or "error" in str(e).lower())
        ]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _graphql(port: int, query: str, variables: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.loads(response.read())
    assert "errors" not in body, body
    return body["data"]


LAUNCH = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on UnauthorizedError { message }
  }
}"""
STATUS = """
query Status($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    ... on PartitionBackfill { status numPartitions runs(limit: 20) { runId status } }
  }
}"""
ASSETS = """
query { assetNodes { assetKey { path } groupName } }
"""


def test_backfill_launched_like_the_ui_runs_as_one_run_through_the_daemon(
    settings: Settings, tmp_path: Path
) -> None:
    env = _env(settings, tmp_path / "dagster_home")
    port = _free_port()
    server = subprocess.Popen(
        [DAGSTER, "dev", "-w", str(REPO_ROOT / "workspace.yaml"), "-p", str(port)],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, so the whole tree can be stopped
    )
    try:
        deadline = time.monotonic() + 120
        keys = None
        while time.monotonic() < deadline:
            try:
                nodes = _graphql(port, ASSETS)["assetNodes"]
                keys = [n["assetKey"] for n in nodes if n["groupName"] in GROUPS]
                break
            except OSError:
                time.sleep(1)
        assert keys, "dagster dev did not answer"
        days = [(MONTH_START + timedelta(days=i)).isoformat() for i in range(5)]
        launched = _graphql(
            port,
            LAUNCH,
            {"params": {"assetSelection": keys, "partitionNames": days, "fromFailure": False}},
        )["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        status = None
        while time.monotonic() < deadline + 180:
            status = _graphql(port, STATUS, {"id": launched["backfillId"]})[
                "partitionBackfillOrError"
            ]
            finished = status["status"] in {"COMPLETED", "COMPLETED_SUCCESS", "FAILED", "CANCELED"}
            if finished and all(r["status"] in {"SUCCESS", "FAILURE"} for r in status["runs"]):
                break
            time.sleep(2)
        assert status, "no backfill status"
        failures = _run_failures(tmp_path / "dagster_home", [r["runId"] for r in status["runs"]])
        assert status["status"] in {"COMPLETED", "COMPLETED_SUCCESS"}, (status, failures)
        # one run for 5 days
        assert [r["status"] for r in status["runs"]] == ["SUCCESS"], failures
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
    expected = {date.fromisoformat(d) for d in days}
    assert _days(settings.warehouse_path, "stg_web_events") == expected
    assert _days(settings.warehouse_path, "stg_crm_customers") == expected
    assert _days(settings.vault_file, "crm_personal") == expected
