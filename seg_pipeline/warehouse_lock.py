"""One process at a time on the warehouse file, tied to the life of the process that holds it.

DuckDB lets one process at a time open a database file for writing. Dagster's pools cannot
guarantee that on their own: a run killed with SIGKILL (or by the out-of-memory killer) never
frees what it claimed in the Dagster instance. So every connection of :class:`Warehouse` first
takes an exclusive ``flock`` on a sidecar file ``<warehouse>.lock``:

- the kernel releases the lock the moment the holding process dies, however it dies, so a killed
  run can never keep the warehouse from the next one;
- the holder writes who it is (pid, Dagster run and step, since when) into the file, so a process
  that has to wait says whom it waits for, and one that gives up names the holder;
- waiting is a blocking ``flock`` in a helper thread (no polling, no CPU), bounded by the
  warehouse's ``lock_timeout_seconds``;
- a holder that finds the previous holder's record still in the file knows that process died
  while holding the warehouse, and says so.

The lock is re-entrant within a process (DuckDB shares one database instance between the
connections of a process, so nested connections of one process do not conflict).
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

LOCK_SUFFIX = ".lock"
LOCK_TIMEOUT_ENV = "SEG_WAREHOUSE_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT_SECONDS = 600.0
# A process with a recorded pid that started this much later than the record is another process
# that reused the pid. Generous, so that a wall-clock step (NTP) never makes a live run look dead.
PID_REUSE_SLACK_SECONDS = 60.0
# While a connection waits, it repeats who holds the warehouse this often.
REPORT_EVERY_SECONDS = 30.0


class WarehouseLockTimeout(TimeoutError):
    """The warehouse stayed held by another process for longer than the allowed wait."""

    def __init__(self, message: str, holder: Holder | None) -> None:
        super().__init__(message)
        self.holder = holder


@dataclass(frozen=True)
class Holder:
    """Who holds the warehouse: a process and, when it runs Dagster, its run and step."""

    pid: int
    since: float
    run_id: str | None = None
    step: str | None = None

    def describe(self) -> str:
        """``pid 123 (run <id>, step raw_orders) since 2026-01-02 03:04:05 UTC``."""
        where = ", ".join(
            part
            for part in (
                f"run {self.run_id}" if self.run_id else "",
                f"step {self.step}" if self.step else "",
            )
            if part
        )
        when = datetime.fromtimestamp(self.since, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"pid {self.pid}{f' ({where})' if where else ''} since {when}"


def lock_timeout_from_env(environ: Mapping[str, str] | None = None) -> float:
    """Seconds a connection waits for a busy warehouse: ``$SEG_WAREHOUSE_LOCK_TIMEOUT`` or
    :data:`DEFAULT_LOCK_TIMEOUT_SECONDS`."""
    value = (os.environ if environ is None else environ).get(LOCK_TIMEOUT_ENV) or ""
    try:
        seconds = float(value) if value.strip() else DEFAULT_LOCK_TIMEOUT_SECONDS
    except ValueError as exc:
        raise ValueError(f"{LOCK_TIMEOUT_ENV} must be a number of seconds, not {value!r}") from exc
    if seconds < 0:
        raise ValueError(f"{LOCK_TIMEOUT_ENV} must not be negative, not {value!r}")
    return seconds


def lock_path(database: str | os.PathLike[str]) -> Path:
    """The sidecar lock file of a warehouse file."""
    return Path(f"{database}{LOCK_SUFFIX}")


def read_holder(path: Path) -> Holder | None:
    """The holder recorded in lock file ``path`` (``None`` when empty or unreadable)."""
    try:
        text = path.read_text(encoding="utf-8")
        return Holder(**json.loads(text)) if text.strip() else None
    except (OSError, ValueError, TypeError):
        return None


def process_alive(pid: int, started_by: float | None = None) -> bool:
    """Whether process ``pid`` runs on this machine (zombies count as dead).

    With ``started_by`` (epoch seconds), a process with that pid that started later (by more
    than :data:`PID_REUSE_SLACK_SECONDS`) is a different process that reused the pid, so it
    counts as dead too (Linux; elsewhere only the pid is checked).
    """
    stat_file = Path(f"/proc/{pid}/stat")
    if Path("/proc/self/stat").exists():
        try:
            stat = stat_file.read_text()
        except OSError:
            return False
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] in {"Z", "X"}:  # zombie or dead, waiting to be reaped by its parent
            return False
        if started_by is None:
            return True
        return _process_start_time(int(fields[19])) <= started_by + PID_REUSE_SLACK_SECONDS
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _process_start_time(start_ticks: int) -> float:
    """Epoch seconds of a process start given in clock ticks since boot (``/proc/<pid>/stat``)."""
    boot = next(
        int(line.split()[1])
        for line in Path("/proc/stat").read_text().splitlines()
        if line.startswith("btime ")
    )
    return boot + start_ticks / os.sysconf("SC_CLK_TCK")


def current_holder() -> Holder:
    """This process, with the Dagster run and step it is executing, if any."""
    run_id = step = None
    if "dagster" in sys.modules:  # a process that never imported Dagster runs no Dagster step
        try:
            from dagster._core.execution.context.compute import current_execution_context

            context = current_execution_context.get()
            if context is not None:
                op_context = context.op_execution_context
                run_id = op_context.run_id
                step = op_context.get_step_execution_context().step.key
        except Exception:  # a Dagster without these internals: the pid is enough
            pass
    return Holder(pid=os.getpid(), since=time.time(), run_id=run_id, step=step)


class _ProcessLock:
    """The lock of one warehouse file as held by this process (re-entrant)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._state = threading.Lock()  # guards depth and fd; held only briefly
        self._acquiring = threading.Lock()  # one thread of this process takes the flock
        self._depth = 0
        self._fd: int | None = None

    def acquire(
        self, timeout: float, on_wait: Callable[[Holder | None, float], None]
    ) -> Holder | None:
        """Hold the lock; returns the record a dead previous holder left behind, if any."""
        with self._state:
            if self._depth:
                self._depth += 1
                return None
        deadline = time.monotonic() + timeout
        if not self._acquiring.acquire(timeout=max(timeout, 0.0)):
            raise self._timeout(timeout)
        try:
            with self._state:
                if self._depth:  # another thread of this process took it meanwhile
                    self._depth += 1
                    return None
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            self._flock(fd, deadline, timeout, on_wait)  # on failure, fd is closed or handed over
            try:
                stale = read_holder(self.path)
                record = json.dumps(asdict(current_holder())).encode("utf-8")
                os.ftruncate(fd, 0)
                os.pwrite(fd, record, 0)
            except BaseException:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
                raise
            with self._state:
                self._fd, self._depth = fd, 1
            return stale
        finally:
            self._acquiring.release()

    def release(self) -> None:
        with self._state:
            self._depth -= 1
            if self._depth or self._fd is None:
                return
            fd, self._fd = self._fd, None
            try:
                os.ftruncate(fd, 0)  # a clean release leaves no record behind
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)

    def _flock(
        self,
        fd: int,
        deadline: float,
        timeout: float,
        on_wait: Callable[[Holder | None, float], None],
    ) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        except OSError:
            os.close(fd)
            raise
        # Block in a helper thread: the kernel wakes it as soon as the holder releases or dies,
        # without polling; this thread waits on an event with a deadline.
        got_it = threading.Event()
        handover = threading.Lock()
        state = {"cancelled": False, "error": None}

        def wait_for_lock() -> None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError as exc:
                state["error"] = exc
                got_it.set()
                return
            with handover:
                if state["cancelled"]:  # the caller gave up meanwhile: let go at once
                    fcntl.flock(fd, fcntl.LOCK_UN)
                    os.close(fd)
                    return
                got_it.set()

        threading.Thread(target=wait_for_lock, name="warehouse-lock-wait", daemon=True).start()
        start = time.monotonic()
        try:
            on_wait(read_holder(self.path), 0.0)
            while not got_it.wait(
                timeout=max(0.0, min(deadline - time.monotonic(), REPORT_EVERY_SECONDS))
            ):
                if time.monotonic() >= deadline:
                    raise self._timeout(timeout)
                on_wait(read_holder(self.path), time.monotonic() - start)
        except BaseException:
            with handover:
                if not got_it.is_set():
                    state["cancelled"] = True  # the waiting thread now owns fd
                    raise
            if state["error"] is None:  # got the lock just now, but the caller is failing
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            raise
        if state["error"] is not None:
            os.close(fd)
            raise state["error"]

    def _timeout(self, timeout: float) -> WarehouseLockTimeout:
        holder = read_holder(self.path)
        who = holder.describe() if holder else "another process (it left no record)"
        hint = (
            f" If that process is stuck, stop it (kill {holder.pid}): a killed holder frees the "
            "warehouse at once."
            if holder
            else ""
        )
        return WarehouseLockTimeout(
            f"Gave up waiting for the warehouse after {timeout:g} s: {self.path} is held by "
            f"{who}.{hint} To wait longer, raise lock_timeout_seconds of the warehouse resource.",
            holder,
        )


_LOCKS: dict[str, _ProcessLock] = {}
_LOCKS_GUARD = threading.Lock()


def _process_lock(database: str) -> _ProcessLock:
    path = lock_path(os.path.realpath(database))
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(str(path), _ProcessLock(path))


@contextmanager
def hold_warehouse(
    database: str,
    timeout: float,
    on_wait: Callable[[Holder | None, float], None],
    on_stale: Callable[[Holder], None],
) -> Iterator[None]:
    """Hold the warehouse file ``database`` for the block, waiting at most ``timeout`` seconds.

    ``on_wait(holder, waited_seconds)`` is called when the warehouse is busy and then every
    :data:`REPORT_EVERY_SECONDS`; ``on_stale(holder)`` when the previous holder died holding it.
    Raises :class:`WarehouseLockTimeout` naming the holder when the wait runs out.
    """
    lock = _process_lock(database)
    stale = lock.acquire(timeout, on_wait)
    try:
        if stale is not None and stale.pid != os.getpid():
            on_stale(stale)
        yield
    finally:
        lock.release()
