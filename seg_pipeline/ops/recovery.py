"""Recovery from killed runs without a person: dead runs are marked failed and let go of the
warehouse.

A run killed with SIGKILL (or by the out-of-memory killer) cannot tell the Dagster instance that
it ended: it stays STARTED, keeps whatever concurrency slots it claimed, and counts against the
run queue's limits. Dagster's own run monitoring does not notice, because the local run launcher
cannot check a run worker's health. Here, any run that uses the warehouse and whose worker
process is gone is reported as failed and its slots are freed. Two places do this:

- :func:`fail_dead_runs_from_this_run`, from the warehouse's first connection in every run and
  whenever a connection finds that the previous holder died holding the warehouse (covers runs
  started with the CLI, where no daemon runs);
- :data:`warehouse_recovery_sensor`, every 30 seconds while the daemon runs (covers queued runs
  that wait behind a dead one and never start).

A run's worker process is the pid Dagster records in the run's engine events ("Executing steps
in process (pid: ...)", "Started process for run (pid: ...)"); it counts as gone when no process
with that pid exists on this machine, it is a zombie, or the pid was reused by a process started
later. The local instance of ``dagster.yaml`` runs every worker on this machine.
"""

from __future__ import annotations

import logging
import os
import threading

from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunsFilter,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)
from dagster._core.events import JobFailureData, RunFailureReason
from dagster._core.storage.dagster_run import DagsterRun

from seg_pipeline.assets_common import WAREHOUSE_POOL
from seg_pipeline.ops.schedules import WAREHOUSE_RUN_TAG
from seg_pipeline.warehouse_lock import process_alive

ALIVE_STATUSES = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]
SENSOR_INTERVAL_SECONDS = 30

_log = logging.getLogger(__name__)


def run_worker_pid(instance: DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """The pid of the process that executes run ``run_id`` and when it reported it (epoch s),
    from the run's latest engine event carrying a pid; ``None`` before the worker has started."""
    for entry in reversed(instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT)):
        event = entry.dagster_event
        data = event.engine_event_data if event else None
        pid = data.metadata.get("pid") if data else None
        if pid is not None:
            try:
                return int(pid.value), entry.timestamp
            except (TypeError, ValueError):
                continue
    return None


def uses_warehouse(run: DagsterRun, slot_holders: set[str]) -> bool:
    """Whether ``run`` has steps in the warehouse pool, carries the warehouse tag, or holds
    warehouse slots."""
    tag_key, tag_value = next(iter(WAREHOUSE_RUN_TAG.items()))
    pools = run.run_op_concurrency.all_pools if run.run_op_concurrency else None
    return (
        run.run_id in slot_holders
        or run.tags.get(tag_key) == tag_value
        or WAREHOUSE_POOL in (pools or ())
    )


def _warehouse_slot_holders(instance: DagsterInstance) -> set[str]:
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return set()
    info = storage.get_concurrency_info(WAREHOUSE_POOL)
    return {slot.run_id for slot in info.claimed_slots} | {s.run_id for s in info.pending_steps}


def fail_dead_runs(instance: DagsterInstance, logger: logging.Logger | None = None) -> list[str]:
    """Report every warehouse run whose worker process is gone as failed, and free the warehouse
    slots of those runs and of runs that already ended. Returns the ids of the runs failed."""
    log = logger or _log
    holders = _warehouse_slot_holders(instance)
    failed = []
    for record in instance.get_run_records(RunsFilter(statuses=ALIVE_STATUSES)):
        run = record.dagster_run
        if run.run_id == _own_run_id() or not uses_warehouse(run, holders):
            continue
        worker = run_worker_pid(instance, run.run_id)
        if worker is None or process_alive(*worker):
            continue
        current = instance.get_run_by_id(run.run_id)
        if current is None or current.is_finished:
            continue
        message = (
            f"Run worker process (pid {worker[0]}) is gone while the run was "
            f"{current.status.value}: it was killed (SIGKILL, out of memory) or crashed. Marked "
            "failed by seg-pipeline's recovery so that it lets go of the warehouse; its open "
            "transaction was rolled back, so re-running its partitions is safe."
        )
        instance.report_run_failed(
            current,
            message,
            JobFailureData(error=None, failure_reason=RunFailureReason.UNEXPECTED_TERMINATION),
        )
        log.warning("Run %s: %s", run.run_id, message)
        failed.append(run.run_id)
    storage = instance.event_log_storage
    for run_id in sorted(holders | set(failed)):
        run = instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            freed = storage.free_concurrency_slots_for_run(run_id)
            if freed:
                log.warning("Freed %s warehouse slot(s) of ended run %s", freed, run_id)
    return failed


def _own_run_id() -> str | None:
    try:
        from dagster._core.execution.context.compute import current_execution_context

        context = current_execution_context.get()
        return context.op_execution_context.run_id if context is not None else None
    except Exception:
        return None


_checked: set[tuple[int, str]] = set()
_checked_guard = threading.Lock()


def fail_dead_runs_from_this_run(
    logger: logging.Logger | None = None, again: bool = False
) -> list[str]:
    """:func:`fail_dead_runs` on the instance of the Dagster run this process executes: once
    per process and run, or ``again`` (when a dead holder's record was just found); nothing
    outside a run."""
    try:
        from dagster._core.execution.context.compute import current_execution_context

        context = current_execution_context.get()
    except Exception:
        return []
    if context is None:
        return []
    op_context = context.op_execution_context
    key = (os.getpid(), op_context.run_id)
    with _checked_guard:
        if key in _checked and not again:
            return []
        _checked.add(key)
    try:
        return fail_dead_runs(op_context.instance, logger)
    except Exception:  # recovery of other runs must never fail this run
        (logger or _log).exception("Could not check the instance for dead warehouse runs")
        return []


@sensor(
    name="warehouse_recovery_sensor",
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Marks warehouse runs whose worker process is gone (SIGKILL, out of memory) as failed "
        "and frees their warehouse slots, so queued runs do not wait behind them forever."
    ),
)
def warehouse_recovery_sensor(context: SensorEvaluationContext) -> SkipReason:
    failed = fail_dead_runs(context.instance, context.log)
    return SkipReason(
        f"Marked dead runs failed: {', '.join(failed)}" if failed else "No dead warehouse runs."
    )
