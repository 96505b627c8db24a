"""Benchmark: the whole daily job for one day at scale, run as a user runs it.

Generates two days (1,000,000 customers, 10,000,000 web events a day by default; cached under
``--data-dir`` and reused while the sizes stay the same), runs the job once for the first day
(its warehouse and models are kept as the starting point), then measures the second day, the
steady state: on a copy of that warehouse, in a new Dagster instance with the project's
``dagster.yaml``, one run of ``dagster asset materialize --select '*' --partition <day 2>``
(no truth file, so no evaluation check). Reported: seconds per step (from the run's event log),
the run's wall time and the peak resident memory of the whole process tree (the CLI and every
process it starts, summed, sampled every 0.1 s from /proc).

Beside it, the raw DuckDB floor on the same file, in a child process of its own: load the day's
web events into a table (``read_json``), then count them per customer.

    python -m benchmarks.bench_day [--customers 1000000] [--web-events 10000000]
        [--data-dir DIR]

Results are printed and appended to ``benchmarks/results/day.jsonl``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path

from benchmarks.common import bench_vault_key, run_child
from seg_pipeline.settings import REPO_ROOT

DAY1 = date(2026, 1, 1)
DAY2 = date(2026, 1, 2)
RESULTS = Path(__file__).parent / "results" / "day.jsonl"
KEY = "bench-key"
DAGSTER = str(Path(sys.executable).parent / "dagster")


def _env(data_dir: Path, warehouse: Path, home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "SEG_DATA_DIR": str(data_dir),
        "SEG_LANDING_DIR": str(data_dir / "landing"),
        # the generator's truth lies elsewhere: production has none, so no evaluation check
        "SEG_TRUTH_DIR": str(data_dir / "no_truth"),
        "SEG_WAREHOUSE": str(warehouse),
        "SEG_MODEL_DIR": str(data_dir / "models"),
        "SEG_PARTITIONS_START": DAY1.isoformat(),
        "SEG_PSEUDONYMISATION_KEY": os.environ.get("SEG_PSEUDONYMISATION_KEY", KEY),
        "SEG_VAULT_KEY": bench_vault_key(),
    }


def _code_fingerprint() -> str:
    """SHA-256 of the pipeline's code and SQL: what day 1's warehouse was built by."""
    digest = hashlib.sha256()
    for path in sorted([*REPO_ROOT.glob("seg_pipeline/**/*.py"), *REPO_ROOT.glob("sql/**/*.sql")]):
        digest.update(str(path.relative_to(REPO_ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


# Raised when the generator's truth files gain what an evaluation needs (2: campaign funnel;
# 3: planted campaign uplift, conversions counting orders placed anyway).
TRUTH_VERSION = 3


def _generate(data_dir: Path, customers: int, web_events: int) -> float | None:
    """Generate both days unless the same sizes are there already; seconds, or None if cached."""
    from seg_pipeline.generator import GeneratorConfig, generate

    marker = data_dir / "generated.json"
    wanted = {
        "customers": customers,
        "web_events": web_events,
        "days": [str(DAY1), str(DAY2)],
        "truth": TRUTH_VERSION,
    }
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        return None
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    started = time.perf_counter()
    generate(
        GeneratorConfig(
            landing_dir=data_dir / "landing",
            truth_dir=data_dir / "generator_truth",
            start_date=DAY1,
            end_date=DAY2,
            n_customers=customers,
            seed=42,
            messiness=0.02,
            web_events_per_day=web_events,
        )
    )
    marker.write_text(json.dumps(wanted))
    return time.perf_counter() - started


def _tree_rss_mb(root: int) -> float:
    """Resident memory of ``root`` and all its descendants, in MB."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    page = os.sysconf("SC_PAGE_SIZE")
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * page
        except (OSError, IndexError, ValueError):
            continue
    return total / 2**20


def _materialize(day: date, env: dict[str, str]) -> tuple[float, float]:
    """One run of every asset for ``day`` through the CLI: wall seconds and peak tree RSS."""
    home = Path(env["DAGSTER_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    command = [DAGSTER, "asset", "materialize", "-m", "seg_pipeline.definitions"]
    command += ["--select", "*", "--partition", day.isoformat()]
    log = home / "run.log"
    peak = 0.0
    started = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdout=out, stderr=out)
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, _tree_rss_mb(proc.pid))
                done.wait(0.1)

        sampler = threading.Thread(target=sample)
        sampler.start()
        code = proc.wait()
        done.set()
        sampler.join()
    wall = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"the run of {day} failed (exit {code}); its log: {log}")
    return wall, peak


def _step_seconds(home: Path) -> dict[str, float]:
    """Seconds of each step of the one run recorded in the instance at ``home``."""
    os.environ["DAGSTER_HOME"] = str(home)
    from dagster import DagsterInstance

    with DagsterInstance.get() as instance:
        (run,) = instance.get_runs(limit=2)
        stats = instance.get_run_step_stats(run.run_id)
    return {
        s.step_key: round(s.end_time - s.start_time, 2)
        for s in sorted(stats, key=lambda s: s.start_time or 0)
        if s.start_time and s.end_time
    }


def _floor(web_events: str) -> dict:
    """The raw DuckDB floor (child process): load the day's web events, count per customer."""
    import duckdb

    with tempfile.TemporaryDirectory() as tmp:
        conn = duckdb.connect(str(Path(tmp) / "floor.duckdb"))
        started = time.perf_counter()
        conn.execute(
            "CREATE TABLE web_events AS SELECT * FROM "
            "read_json($path, format = 'newline_delimited', ignore_errors = true)",
            {"path": web_events},
        )
        loaded = time.perf_counter()
        rows = conn.execute(
            "SELECT count(*) FROM (SELECT customer_id, count(*) AS events, "
            "count(DISTINCT session_id) AS sessions FROM web_events GROUP BY customer_id)"
        ).fetchone()[0]
        aggregated = time.perf_counter()
        events = conn.execute("SELECT count(*) FROM web_events").fetchone()[0]
        conn.close()
    return {
        "load_seconds": round(loaded - started, 2),
        "aggregate_seconds": round(aggregated - loaded, 2),
        "events": events,
        "customers": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--web-events", type=int, default=10_000_000)
    parser.add_argument("--data-dir", type=Path, default=REPO_ROOT / "data" / "bench_day")
    parser.add_argument("--floor-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.floor_child:
        print(json.dumps(_floor(args.floor_child)))
        return 0

    data_dir = args.data_dir.resolve()
    load_before = os.getloadavg()
    generated = _generate(data_dir, args.customers, args.web_events)
    if generated is not None:
        print(f"Generated two days in {generated:.0f} s under {data_dir}")
    start_state = data_dir / "day1.duckdb"
    built_by = data_dir / "day1.code"
    fresh = built_by.exists() and built_by.read_text() == _code_fingerprint()
    if not (start_state.exists() and fresh):
        # day 1 is the starting state of the measured day: rebuilt when the code changed
        # (a table's shape may have changed with it)
        building = data_dir / "day1.building.duckdb"
        building.unlink(missing_ok=True)
        start_state.unlink(missing_ok=True)
        shutil.rmtree(data_dir / "models", ignore_errors=True)
        shutil.rmtree(data_dir / "home_day1", ignore_errors=True)
        wall, peak = _materialize(DAY1, _env(data_dir, building, data_dir / "home_day1"))
        building.rename(start_state)
        built_by.write_text(_code_fingerprint())
        print(f"Day 1 (no state yet): {wall:.1f} s, peak {peak:,.0f} MB")

    with tempfile.TemporaryDirectory(dir=data_dir) as tmp:
        warehouse = Path(tmp) / "warehouse.duckdb"
        shutil.copy(start_state, warehouse)
        home = Path(tmp) / "dagster_home"
        wall, peak = _materialize(DAY2, _env(data_dir, warehouse, home))
        steps = _step_seconds(home)

    web_events = data_dir / "landing" / "web_events" / f"{DAY2.isoformat()}.jsonl"
    floor, floor_wall, floor_peak = run_child(
        "benchmarks.bench_day", ["--floor-child", str(web_events)]
    )

    print(f"\nDay 2 at {args.customers:,} customers, {args.web_events:,} web events")
    print(f"{'step':<58}{'seconds':>9}")
    for step, seconds in sorted(steps.items(), key=lambda kv: -kv[1]):
        print(f"{step:<58}{seconds:>9.2f}")
    print(f"{'run (CLI process start to exit)':<58}{wall:>9.1f}   peak {peak:,.0f} MB (tree)")
    print(
        f"{'DuckDB floor: load web events':<58}{floor['load_seconds']:>9.2f}\n"
        f"{'DuckDB floor: aggregate per customer':<58}{floor['aggregate_seconds']:>9.2f}"
        f"   peak {floor_peak:,.0f} MB"
    )
    record = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "customers": args.customers,
        "web_events": args.web_events,
        "day": DAY2.isoformat(),
        "run_seconds": round(wall, 1),
        "peak_tree_mb": round(peak),
        "steps": steps,
        "floor": {**floor, "wall_seconds": round(floor_wall, 1), "peak_mb": round(floor_peak)},
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as f:
        f.write(json.dumps(record) + "\n")
    print(f"\nappended to {RESULTS.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
