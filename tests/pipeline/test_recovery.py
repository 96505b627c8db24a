"""Recovery without a person: a killed run neither keeps the warehouse nor stays STARTED, and a
step that cannot get the warehouse says who holds it and gives up after the configured time.

The last test starts real `dagster asset materialize` processes and kills one with SIGKILL (what
the out-of-memory killer does) while it holds the warehouse; the others use real processes, a
real Dagster instance and in-process runs.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pytest
from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    SkipReason,
    build_sensor_context,
)
from dagster._core.events import EngineEventData
from dagster._core.utils import make_new_run_id

from seg_pipeline.assets_common import WAREHOUSE_POOL
from seg_pipeline.definitions import build_definitions
from seg_pipeline.generator import GeneratorConfig, generate
from seg_pipeline.ops.recovery import fail_dead_runs, warehouse_recovery_sensor
from seg_pipeline.ops.runs import run_daily_range
from seg_pipeline.ops.schedules import WAREHOUSE_RUN_TAG
from seg_pipeline.resources import Warehouse, WarehouseError
from seg_pipeline.settings import REPO_ROOT, Settings
from seg_pipeline.warehouse_lock import LOCK_TIMEOUT_ENV, lock_path, process_alive, read_holder
from tests.conftest import TEST_KEY
from tests.helpers import warehouse_fingerprints

DAGSTER = str(Path(sys.executable).parent / "dagster")
DAY1, DAY2 = date(2026, 1, 1), date(2026, 1, 2)

# Holds the warehouse as Warehouse.connection() does (the lock, then DuckDB's own file lock)
# until killed; without importing Dagster, so that it starts in a fraction of a second.
HOLD = """
import sys, time
import duckdb
from seg_pipeline.warehouse_lock import hold_warehouse
quiet = lambda *args: None
with hold_warehouse(sys.argv[1], 5, quiet, quiet), duckdb.connect(sys.argv[1]) as conn:
    conn.execute("CREATE TABLE IF NOT EXISTS held (i INT)")
    print("holding", flush=True)
    time.sleep(600)
"""


@dataclass(frozen=True)
class TwoDays:
    landing: Path
    truth: Path


@pytest.fixture(scope="module")
def two_days(tmp_path_factory: pytest.TempPathFactory) -> TwoDays:
    """Two generated days at 300 customers."""
    root = tmp_path_factory.mktemp("two_days")
    generate(
        GeneratorConfig(
            landing_dir=root / "landing",
            truth_dir=root / "truth",
            start_date=DAY1,
            end_date=DAY2,
            n_customers=300,
            seed=11,
        )
    )
    return TwoDays(root / "landing", root / "truth")


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process group of ``proc`` (started with its own session) and reap it."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen]]:
    """Another process holding the warehouse file ``tmp_path/w.duckdb`` (killed afterwards)."""
    database = tmp_path / "w.duckdb"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(database)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
        cwd=REPO_ROOT,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
        yield database, proc
    finally:
        _kill_group(proc)


def test_a_busy_warehouse_is_waited_for_without_spinning_then_given_up_naming_the_holder(
    holder: tuple[Path, subprocess.Popen],
) -> None:
    database, proc = holder
    warehouse = Warehouse(database=str(database), lock_timeout_seconds=1.5)
    wall, cpu = time.monotonic(), time.process_time()
    with pytest.raises(WarehouseError) as failure, warehouse.connection():
        pass
    wall, cpu = time.monotonic() - wall, time.process_time() - cpu
    message = str(failure.value)
    assert "Gave up waiting for the warehouse after 1.5 s" in message
    assert f"held by pid {proc.pid}" in message
    assert "lock_timeout_seconds" in message
    assert 1.5 <= wall < 5
    assert cpu < 0.3, f"waiting used {cpu:.2f} s of CPU in {wall:.2f} s"


def test_a_waiting_connection_gets_the_warehouse_as_soon_as_the_holder_is_killed(
    holder: tuple[Path, subprocess.Popen],
) -> None:
    database, proc = holder
    got: dict[str, float] = {}

    def connect() -> None:
        with Warehouse(database=str(database), lock_timeout_seconds=60).connection() as conn:
            got["at"] = time.monotonic()
            got["rows"] = conn.execute("SELECT count(*) FROM held").fetchone()[0]

    waiter = threading.Thread(target=connect)
    waiter.start()
    time.sleep(1.0)
    assert "at" not in got  # still waiting while the holder lives
    killed_at = time.monotonic()
    _kill_group(proc)
    waiter.join(timeout=30)
    assert got.get("rows") == 0, "the table the killed holder created is readable"
    assert got["at"] - killed_at < 2.0
    assert read_holder(lock_path(database)) is None  # released cleanly by the new holder


def test_a_warehouse_step_that_cannot_get_the_warehouse_fails_after_the_configured_time(
    two_days: TwoDays,
    holder: tuple[Path, subprocess.Popen],
) -> None:
    database, proc = holder
    settings = Settings.from_env(
        {
            LOCK_TIMEOUT_ENV: "2",
            "SEG_LANDING_DIR": str(two_days.landing),
            "SEG_TRUTH_DIR": str(two_days.truth),
            "SEG_WAREHOUSE": str(database),
            "SEG_PARTITIONS_START": DAY1.isoformat(),
        }
    )
    instance = DagsterInstance.ephemeral()
    started = time.monotonic()
    result = run_daily_range(
        build_definitions(settings),
        DAY1,
        DAY1,
        instance=instance,
        raise_on_error=False,
        assets=["raw_orders"],
    )
    elapsed = time.monotonic() - started
    assert not result.success
    failures = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
    assert [e.step_key for e in failures] == ["raw_orders"]
    error = failures[0].step_failure_data.error.to_string()
    assert "Gave up waiting for the warehouse after 2 s" in error
    assert f"held by pid {proc.pid}" in error
    messages = [e.user_message for e in instance.all_logs(result.run_id)]
    assert any(
        "Waiting for the warehouse" in m and f"held by pid {proc.pid}" in m for m in messages
    )
    assert elapsed < 60


def _started_run(instance: DagsterInstance, tags: dict[str, str], pid: int) -> DagsterRun:
    """A run recorded as STARTED whose worker reported ``pid``, as Dagster's executors do."""
    run = instance.add_run(
        DagsterRun(
            job_name="daily_pipeline",
            run_id=make_new_run_id(),
            status=DagsterRunStatus.STARTED,
            tags=tags,
        )
    )
    instance.report_engine_event(
        f"Executing steps in process (pid: {pid})", run, EngineEventData.in_process(pid)
    )
    return run


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_process_alive_tells_dead_zombie_and_reused_pids_from_live_ones() -> None:
    assert process_alive(os.getpid())
    assert process_alive(os.getpid(), started_by=time.time())
    # a pid recorded before this process started belonged to another process
    assert not process_alive(os.getpid(), started_by=time.time() - 365 * 86400)
    assert not process_alive(_dead_pid())
    zombie = subprocess.Popen(["true"])
    deadline = time.monotonic() + 10
    while Path(f"/proc/{zombie.pid}/stat").read_text().split(") ")[1][0] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert not process_alive(zombie.pid)
    zombie.wait()


def test_dead_warehouse_runs_are_failed_and_their_slots_freed(tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    with DagsterInstance.from_config(str(home)) as instance:
        storage = instance.event_log_storage
        storage.initialize_concurrency_limit_to_default(WAREHOUSE_POOL)  # 1 slot (dagster.yaml)
        dead = _started_run(instance, WAREHOUSE_RUN_TAG, _dead_pid())
        alive = _started_run(instance, WAREHOUSE_RUN_TAG, os.getpid())
        other_job = _started_run(instance, {}, _dead_pid())  # not a warehouse run: not ours
        assert storage.claim_concurrency_slot(WAREHOUSE_POOL, dead.run_id, "raw_orders").is_claimed
        assert not storage.claim_concurrency_slot(WAREHOUSE_POOL, alive.run_id, "x").is_claimed

        outcome = warehouse_recovery_sensor(build_sensor_context(instance=instance))

        assert isinstance(outcome, SkipReason)
        assert dead.run_id in (outcome.skip_message or "")
        status = {
            r.run_id: instance.get_run_by_id(r.run_id).status for r in (dead, alive, other_job)
        }
        assert status == {
            dead.run_id: DagsterRunStatus.FAILURE,
            alive.run_id: DagsterRunStatus.STARTED,
            other_job.run_id: DagsterRunStatus.STARTED,
        }
        failure = instance.all_logs(dead.run_id, of_type=DagsterEventType.RUN_FAILURE)
        assert "is gone while the run was STARTED" in failure[0].dagster_event.message
        # the slot the dead run held is free for the live run now
        assert storage.claim_concurrency_slot(WAREHOUSE_POOL, alive.run_id, "x").is_claimed
        assert fail_dead_runs(instance) == []  # nothing left to do


def _wait_for_holder(lock: Path, pid: int, proc: subprocess.Popen, timeout: float):
    """Poll the lock file until process ``pid`` holds the warehouse inside a Dagster step."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        held = read_holder(lock)
        if held is not None and held.pid == pid and held.step:
            return held
        assert proc.poll() is None, "the run ended before it was caught holding the warehouse"
        time.sleep(0.005)
    raise AssertionError(f"process {pid} never held the warehouse within {timeout} s")


@pytest.mark.slow
def test_a_run_killed_while_holding_the_warehouse_does_not_block_the_next_run(
    two_days: TwoDays, tmp_path: Path
) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    warehouse = tmp_path / "warehouse.duckdb"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "SEG_LANDING_DIR": str(two_days.landing),
        "SEG_TRUTH_DIR": str(two_days.truth),
        "SEG_WAREHOUSE": str(warehouse),
        "SEG_PARTITIONS_START": DAY1.isoformat(),
        "SEG_PSEUDONYMISATION_KEY": TEST_KEY,
        LOCK_TIMEOUT_ENV: "120",
    }

    def materialize(select: str, log: Path) -> subprocess.Popen:
        return subprocess.Popen(
            [DAGSTER, "asset", "materialize", "-m", "seg_pipeline.definitions",
             "--select", select, "--partition", DAY1.isoformat()],
            env=env,
            cwd=REPO_ROOT,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the whole tree can be killed
        )  # fmt: skip

    instance = DagsterInstance.from_config(str(home))  # creates the storage before the CLI does
    first = materialize("group:raw", tmp_path / "first.log")
    second = None
    try:
        held = _wait_for_holder(lock_path(warehouse), first.pid, first, timeout=240)
        _kill_group(first)  # SIGKILL, as the out-of-memory killer does
        assert read_holder(lock_path(warehouse)) == held  # it never let go itself

        # The instance shows what the defect left behind: the run STARTED, its step running.
        assert instance.get_run_by_id(held.run_id).status == DagsterRunStatus.STARTED
        steps = instance.all_logs(
            held.run_id, of_type={DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS}
        )
        assert (held.step, DagsterEventType.STEP_START) in {
            (e.step_key, e.dagster_event_type) for e in steps
        }
        assert (held.step, DagsterEventType.STEP_SUCCESS) not in {
            (e.step_key, e.dagster_event_type) for e in steps
        }

        started = time.monotonic()
        second = materialize("raw_orders", tmp_path / "second.log")
        second.wait(timeout=300)
        elapsed = time.monotonic() - started
        output = (tmp_path / "second.log").read_text()
        assert second.returncode == 0, output[-3000:]
        assert "RUN_SUCCESS" in output
        assert f"The previous holder of the warehouse, pid {first.pid}" in output
        assert f"Run worker process (pid {first.pid}) is gone" in output
        print(f"next run succeeded in {elapsed:.1f} s")
        assert elapsed < 240
    finally:
        for proc in (first, second):
            if proc is not None:
                _kill_group(proc)

    assert instance.get_run_by_id(held.run_id).status == DagsterRunStatus.FAILURE
    failure = instance.all_logs(held.run_id, of_type=DagsterEventType.RUN_FAILURE)
    assert f"Run worker process (pid {first.pid}) is gone" in failure[0].dagster_event.message
    instance.dispose()
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        rows, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT _record_number) FROM raw_orders "
            "WHERE _partition_date = $day",
            {"day": DAY1},
        ).fetchone()
    assert rows == distinct > 0  # the day is there once: the killed run left nothing half-done


def _two_day_settings(two_days: TwoDays, folder: Path) -> Settings:
    return Settings.from_env(
        {
            "SEG_DATA_DIR": str(folder),
            "SEG_LANDING_DIR": str(two_days.landing),
            "SEG_TRUTH_DIR": str(two_days.truth),
            "SEG_PARTITIONS_START": DAY1.isoformat(),
        }
    )


@pytest.mark.slow
def test_a_run_killed_mid_partition_leaves_no_table_half_written_and_a_rerun_completes_it(
    two_days: TwoDays, tmp_path: Path
) -> None:
    """SIGKILL a real run of the whole graph for day 2 while it writes the features: every
    table is as before the run or holds the complete partition of an uninterrupted run (each
    asset commits its window whole), the table being written is as before, and running the
    day again gives the same tables as the uninterrupted run."""
    killed = _two_day_settings(two_days, tmp_path / "killed")
    assert run_daily_range(build_definitions(killed), DAY1, DAY1).success
    shutil.copytree(killed.data_dir, tmp_path / "reference")
    reference = _two_day_settings(two_days, tmp_path / "reference")
    before = warehouse_fingerprints(killed.warehouse_path)
    assert run_daily_range(build_definitions(reference), DAY2, DAY2).success
    complete = warehouse_fingerprints(reference.warehouse_path)

    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "SEG_DATA_DIR": str(killed.data_dir),
        "SEG_LANDING_DIR": str(two_days.landing),
        "SEG_TRUTH_DIR": str(two_days.truth),
        "SEG_PARTITIONS_START": DAY1.isoformat(),
    }
    run = subprocess.Popen(
        [DAGSTER, "asset", "materialize", "-m", "seg_pipeline.definitions",
         "--select", "*", "--partition", DAY2.isoformat()],
        env=env,
        cwd=REPO_ROOT,
        stdout=(tmp_path / "run.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while True:  # until the features step holds the warehouse
            held = read_holder(lock_path(killed.warehouse_path))
            if held is not None and held.pid == run.pid and held.step == "customer_features":
                break
            assert run.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the run never reached the features step"
            time.sleep(0.005)
        time.sleep(0.2)  # into its transaction
    finally:
        _kill_group(run)

    after = warehouse_fingerprints(killed.warehouse_path)
    assert after.keys() <= complete.keys()
    half = [t for t in after if after[t] not in (before.get(t), complete[t])]
    assert half == []
    for table in ("main.customer_feature_state", "main.customer_features"):
        assert after[table] == before[table]
    assert (
        after["main.raw_web_events"]
        == complete["main.raw_web_events"]
        != before.get("main.raw_web_events")
    )

    assert run_daily_range(build_definitions(killed), DAY2, DAY2).success
    again = warehouse_fingerprints(killed.warehouse_path)
    assert {t for t in complete if again.get(t) != complete[t]} == set()
