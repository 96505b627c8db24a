"""Benchmark: generate and stage one day at scale; wall time and peak memory per step.

Each step runs in a child process of its own so its peak resident memory is its own
(:func:`benchmarks.common.run_child`). Results are printed and appended to
``benchmarks/results/ingest.jsonl``.

    python -m benchmarks.bench_ingest [--customers 100000] [--web-events 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import warnings
from datetime import UTC, date, datetime
from pathlib import Path

from benchmarks.common import bench_vault_key, run_child
from seg_pipeline.sources import SOURCES
from seg_pipeline.staging.assets import MODELS

DAY = date(2026, 1, 1)
RESULTS = Path(__file__).parent / "results" / "ingest.jsonl"


def run_load_step(step: str, customers: int, web_events: int) -> float:
    """Generate the day, or materialize one asset of it; seconds of the step alone (imports
    and definitions are built before the clock starts)."""
    warnings.filterwarnings("ignore", message=".*currently in (beta|preview).*")
    from dagster import AssetKey, DagsterInstance, materialize

    from seg_pipeline.definitions import build_definitions
    from seg_pipeline.generator import GeneratorConfig, generate
    from seg_pipeline.settings import Settings

    settings = Settings.from_env()
    if step == "generate":
        started = time.perf_counter()
        generate(
            GeneratorConfig(
                landing_dir=settings.landing_dir,
                truth_dir=settings.truth_dir,
                start_date=DAY,
                end_date=DAY,
                n_customers=customers,
                seed=42,
                messiness=0.02,
                web_events_per_day=web_events,
            )
        )
        return time.perf_counter() - started
    # The asset comes from the definitions already bound to their resources.
    asset = build_definitions(settings).resolve_assets_def(AssetKey(step))
    instance = DagsterInstance.ephemeral()
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    started = time.perf_counter()
    result = materialize(
        [asset], partition_key=DAY.isoformat(), instance=instance, run_config=quiet
    )
    assert result.success, step
    return time.perf_counter() - started


def _measure(step: str, customers: int, web_events: int, env: dict[str, str]) -> dict:
    args = ["--child", step, "--customers", str(customers), "--web-events", str(web_events)]
    out, wall, peak_mb = run_child("benchmarks.bench_ingest", args, env)
    return {
        "step": step,
        "seconds": round(out["seconds"], 2),
        "seconds_with_startup": round(wall, 2),
        "peak_rss_mb": round(peak_mb, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--web-events", type=int, default=1_000_000)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        seconds = run_load_step(args.child, args.customers, args.web_events)
        print(json.dumps({"seconds": seconds}))
        return 0

    with tempfile.TemporaryDirectory(prefix="seg-bench-") as tmp:
        env = {
            **os.environ,
            "SEG_DATA_DIR": tmp,
            "SEG_PARTITIONS_START": DAY.isoformat(),
            "SEG_PSEUDONYMISATION_KEY": os.environ.get("SEG_PSEUDONYMISATION_KEY", "bench-key"),
            "SEG_VAULT_KEY": bench_vault_key(),
        }
        steps = ["generate", *(f"raw_{s.name}" for s in SOURCES), *(m.name for m in MODELS)]
        rows = [_measure(step, args.customers, args.web_events, env) for step in steps]
        sizes = {
            p.parent.name: p.stat().st_size for p in Path(tmp, "landing").glob("*/*") if p.is_file()
        }
    print(f"\nOne day at {args.customers:,} customers, {args.web_events:,} web events")
    print(f"{'step':<22}{'seconds':>10}{'with start-up':>15}{'peak RSS MB':>13}")
    for row in rows:
        print(
            f"{row['step']:<22}{row['seconds']:>10.2f}{row['seconds_with_startup']:>15.2f}"
            f"{row['peak_rss_mb']:>13.1f}"
        )
    total = sum(r["seconds"] for r in rows)
    print(f"{'total':<22}{total:>10.2f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a", encoding="utf-8") as handle:
        handle.write(
            json.dumps(
                {
                    "at": datetime.now(UTC).isoformat(timespec="seconds"),
                    "machine": f"{platform.machine()} {os.cpu_count()} cpu",
                    "customers": args.customers,
                    "web_events": args.web_events,
                    "file_bytes": sizes,
                    "steps": rows,
                }
            )
            + "\n"
        )
    print(f"\nappended to {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
