"""Benchmark: the data-quality checks on one day at scale, against the steps they guard.

Generates one day (100,000 customers, 1,000,000 web events by default), loads and stages it
through the real assets, then validates each table's suite on that partition, every step in a
child process of its own (``os.wait4`` gives the child's peak resident memory). For a check
the child times the one-off ``import great_expectations`` and GX context apart from the
validation itself (``validate_window`` + ``report_metadata``, what the check body does), then
the validation a second time in the same process. Results are printed and appended to
``benchmarks/results/quality.jsonl``, with the machine's load average before and after.

    python -m benchmarks.bench_quality [--customers 100000] [--web-events 1000000]
        [--data-dir DIR [--reuse]] [--tables stg_web_events raw_web_events]

``--data-dir`` keeps the generated data and warehouse in DIR; with ``--reuse`` the generate,
load and stage steps are skipped and only the checks run (their staging seconds then come
from the last result line of the same size).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.bench_ingest import DAY, run_load_step
from benchmarks.common import bench_vault_key, run_child
from seg_pipeline.quality.suites import QUALITY_TABLES
from seg_pipeline.sources import SOURCES

RESULTS = Path(__file__).parent / "results" / "quality.jsonl"
STAGING = tuple(f"stg_{s.name}" for s in SOURCES)
KEY = "bench-key"


def _check_step(table: str) -> dict:
    """Validate ``table``'s suite on the day: GX import and context (once per process), then
    the validation twice."""
    from seg_pipeline.quality import checks
    from seg_pipeline.resources import Warehouse
    from seg_pipeline.settings import Settings

    started = time.perf_counter()
    import great_expectations  # noqa: F401  (the one-off import, timed on its own)

    gx_import = time.perf_counter() - started
    started = time.perf_counter()
    checks._batch_definition()  # the per-process GX context, data source and batch definition
    gx_context = time.perf_counter() - started
    warehouse = Warehouse(
        database=str(Settings.from_env().warehouse_path),
        pseudonymisation_key=os.environ.get("SEG_PSEUDONYMISATION_KEY", KEY),
    )
    seconds = []
    with warehouse.connection() as conn:
        for _ in range(2):
            started = time.perf_counter()
            report = checks.validate_window(conn, table, DAY, DAY)
            checks.report_metadata(report)
            seconds.append(time.perf_counter() - started)
    return {
        "gx_import_seconds": gx_import,
        "gx_context_seconds": gx_context,
        "seconds": seconds[0],
        "seconds_warm": seconds[1],
        "rows": report.rows,
        "passed": report.passed,
        "failed": [f"{o.label} [{o.severity}]" for o in report.failed],
    }


def _child(step: str, customers: int, web_events: int) -> None:
    if step.startswith("check:"):
        out = _check_step(step.removeprefix("check:"))
    else:
        out = {"seconds": run_load_step(step, customers, web_events)}
    print(json.dumps(out))


def _measure(step: str, customers: int, web_events: int, env: dict[str, str]) -> dict:
    args = ["--child", step, "--customers", str(customers), "--web-events", str(web_events)]
    inner, wall, peak_mb = run_child("benchmarks.bench_quality", args, env)
    row = {"step": step, **inner}
    for key in ("seconds", "seconds_warm", "gx_import_seconds", "gx_context_seconds"):
        if key in row:
            row[key] = round(row[key], 2)
    row["seconds_with_startup"] = round(wall, 2)
    row["peak_rss_mb"] = round(peak_mb, 1)
    return row


def _previous_steps(customers: int, web_events: int) -> dict[str, dict]:
    """Load/stage rows of the last recorded run of the same size (for ``--reuse``)."""
    if not RESULTS.exists():
        return {}
    for line in reversed(RESULTS.read_text(encoding="utf-8").splitlines()):
        record = json.loads(line)
        same_size = (record["customers"], record["web_events"]) == (customers, web_events)
        if same_size and record.get("load_steps"):
            return {r["step"]: r for r in record["load_steps"]}
    return {}


def _load_machine() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cpu"


def _report(args: argparse.Namespace, load_rows: dict[str, dict], checks: list[dict]) -> None:
    print(f"\nOne day at {args.customers:,} customers, {args.web_events:,} web events")
    print(f"{'step':<22}{'seconds':>9}{'with start-up':>15}{'peak RSS MB':>13}")
    for row in load_rows.values():
        print(
            f"{row['step']:<22}{row['seconds']:>9.2f}{row['seconds_with_startup']:>15.2f}"
            f"{row['peak_rss_mb']:>13.1f}"
        )
    print(
        f"\n{'check':<20}{'rows':>10}{'check s':>9}{'warm s':>8}{'asset s':>9}{'stg s':>7}"
        f"{'GX import s':>13}{'context s':>11}{'RSS MB':>8}  passed"
    )
    for row in checks:
        table = row["step"].removeprefix("check:")
        staged = load_rows.get("stg_" + table.split("_", 1)[1], {}).get("seconds")
        asset = load_rows.get(table, {}).get("seconds")
        print(
            f"{table:<20}{row['rows']:>10,}{row['seconds']:>9.2f}{row['seconds_warm']:>8.2f}"
            f"{asset if asset is not None else float('nan'):>9.2f}"
            f"{staged if staged is not None else float('nan'):>7.2f}"
            f"{row['gx_import_seconds']:>13.2f}{row.get('gx_context_seconds', 0):>11.2f}"
            f"{row['peak_rss_mb']:>8.1f}  "
            + ("yes" if row["passed"] else "NO: " + ", ".join(row["failed"]))
        )
    print(
        "\ncheck s: validate_window + report_metadata, first call in a fresh process (after the "
        "one-off GX import\nand context, shown apart); warm s: the same again in that process; "
        "asset s: materializing\nthe checked table; stg s: staging the same source (what a raw "
        "check guards)."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--web-events", type=int, default=1_000_000)
    parser.add_argument("--data-dir", help="keep data and warehouse here (default: a temp dir)")
    parser.add_argument("--reuse", action="store_true", help="skip generate, load and stage")
    parser.add_argument("--tables", nargs="*", help="check only these tables")
    parser.add_argument("--note", default="", help="free text stored with the result")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.customers, args.web_events)
        return 0

    tables = args.tables or [t.table for t in QUALITY_TABLES]
    with tempfile.TemporaryDirectory(prefix="seg-bench-quality-") as tmp:
        data_dir = Path(args.data_dir) if args.data_dir else Path(tmp)
        env = {
            **os.environ,
            "SEG_DATA_DIR": str(data_dir),
            "SEG_PARTITIONS_START": DAY.isoformat(),
            "SEG_PSEUDONYMISATION_KEY": os.environ.get("SEG_PSEUDONYMISATION_KEY", KEY),
            "SEG_VAULT_KEY": bench_vault_key(),
        }
        load_at = _load_machine()
        if args.reuse:
            if not (data_dir / "warehouse.duckdb").exists():
                raise SystemExit(f"--reuse: no warehouse in {data_dir}")
            load_rows = _previous_steps(args.customers, args.web_events)
        else:
            steps = ["generate", *(f"raw_{s.name}" for s in SOURCES), *STAGING]
            load_rows = {
                step: _measure(step, args.customers, args.web_events, env) for step in steps
            }
        check_rows = [
            _measure(f"check:{table}", args.customers, args.web_events, env) for table in tables
        ]
        load_after = _load_machine()
    _report(args, load_rows, check_rows)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a", encoding="utf-8") as handle:
        record = {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()} {os.cpu_count()} cpu",
            "load_before": load_at,
            "load_after": load_after,
            "customers": args.customers,
            "web_events": args.web_events,
            "reused_warehouse": bool(args.reuse),
            "note": args.note,
            "load_steps": list(load_rows.values()),
            "checks": check_rows,
        }
        handle.write(json.dumps(record) + "\n")
    print(f"\nappended to {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
