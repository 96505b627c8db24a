"""Benchmark: one day of the default segmentation at scale (1,000,000 customers).

A small real world is generated with the project's generator and loaded by the project's own
daily runs up to ``customer_features`` (2,000 customers over 31 days, about a minute, kept and
reused). A benchmark warehouse then gets ``customer_features`` for the last 8 days of that month
(the 7-day training window plus the day before, for migrations) at ``--customers`` customers per
day, by resampling the real customers with replacement (seeded, in DuckDB SQL): synthetic
customer ``i`` is a copy of real customer ``j`` on every day ``j`` has a row, under a new id.

The segmentation assets of the day before are materialized first (a model in force and the
previous day's segments, untimed), then each segmentation asset of the last day is run through
the project's Dagster daily job (:func:`seg_pipeline.ops.runs.run_daily_range`), each in a
child process of its own so its peak resident memory is its own. ``segmentation_model`` is run
with ``force_refit`` so the timed day fits (automatic K on the rolling window, default
settings). Results are printed and appended, one JSON line per step, to
``benchmarks/results/segmentation.jsonl``.

    python -m benchmarks.bench_segmentation [--customers 1000000] [--data-dir PATH]
        [--rebuild] [--steps segmentation_model,...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.common import bench_vault_key, run_child

if TYPE_CHECKING:
    from seg_pipeline.settings import Settings

RESULTS = Path(__file__).parent / "results" / "segmentation.jsonl"
DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "bench_segmentation"
SEED_START, DAY = date(2026, 1, 1), date(2026, 1, 31)  # the real month; DAY is timed
SEED_CUSTOMERS, SEED = 2_000, 7
HISTORY_DAYS = 8  # the 7-day training window and the day before it
STEPS = ("segmentation_model", "customer_segments", "segment_migrations", "segment_profiles")
OUTPUT_TABLES = ("model_registry", *STEPS)
LOAD_ASSETS = [
    *(f"raw_{s}" for s in ("crm_customers", "orders", "campaign_sends", "reviews", "web_events")),
    *(f"stg_{s}" for s in ("crm_customers", "orders", "campaign_sends", "reviews", "web_events")),
    "review_topic_model",
    "review_nlp",
    "customer_features",
]

# customer i of the benchmark copies real customer j = u(i) of the last day, on every day of the
# window j has features (so customers new in the window stay new), under a new id.
RESAMPLE = """
create or replace table customer_features as
with real as (
    select customer_id, row_number() over (order by customer_id) - 1 as j
    from seed.customer_features where as_of_date = $last
),
picks as (
    select i, hash(i, 'bench-segmentation') % (select count(*) from real) as j
    from range($customers) t(i)
)
select f.* replace ('B' || lpad(cast(picks.i as varchar), 8, '0') as customer_id)
from picks
join real using (j)
join seed.customer_features f
    on f.customer_id = real.customer_id and f.as_of_date between $first and $last
order by f.as_of_date, customer_id
"""


def settings_for(data_dir: Path, warehouse: Path) -> Settings:
    """Project settings with every path under ``data_dir`` (no truth file: checks pass)."""
    from seg_pipeline.settings import Settings

    settings = Settings.from_env(
        {"SEG_DATA_DIR": str(data_dir), "SEG_PARTITIONS_START": SEED_START.isoformat()}
    )
    return replace(settings, warehouse_path=warehouse)


def build_seed_world(data_dir: Path) -> Path:
    """Generate and load the small real month (reused while its warehouse exists)."""
    from seg_pipeline.definitions import build_definitions
    from seg_pipeline.generator import GeneratorConfig, generate
    from seg_pipeline.ops.runs import run_daily_range

    settings = settings_for(data_dir, data_dir / "warehouse.duckdb")
    done = data_dir / "loaded"
    if done.exists():
        return settings.warehouse_path
    began = time.perf_counter()
    settings.warehouse_path.unlink(missing_ok=True)
    generate(
        GeneratorConfig(
            landing_dir=settings.landing_dir,
            truth_dir=settings.truth_dir,
            start_date=SEED_START,
            end_date=DAY,
            n_customers=SEED_CUSTOMERS,
            seed=SEED,
        )
    )
    defs = build_definitions(settings)
    run_daily_range(defs, SEED_START, DAY, assets=LOAD_ASSETS, log_level="WARNING")
    done.touch()
    print(f"seed world built in {time.perf_counter() - began:.0f} s", flush=True)
    return settings.warehouse_path


def build_warehouse(seed_db: Path, path: Path, customers: int) -> float:
    """Write the resampled ``customer_features`` to ``path``; seconds taken."""
    import duckdb

    began = time.perf_counter()
    path.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as conn:
        conn.execute("SET enable_progress_bar = false")
        conn.execute(f"ATTACH '{seed_db}' AS seed (READ_ONLY)")
        first = DAY - timedelta(days=HISTORY_DAYS - 1)
        conn.execute(RESAMPLE, {"customers": customers, "first": first, "last": DAY})
        conn.execute("DETACH seed")
        conn.execute("create table bench_spec as select $c as customers", {"c": customers})
    return time.perf_counter() - began


def existing_customers(path: Path) -> int | None:
    import duckdb

    if not path.exists():
        return None
    try:
        with duckdb.connect(str(path), read_only=True) as conn:
            return int(conn.execute("select customers from bench_spec").fetchall()[0][0])
    except duckdb.Error:
        return None


def reset_outputs(path: Path) -> None:
    """Drop what earlier benchmark runs wrote, so every run starts from the same state."""
    import duckdb

    with duckdb.connect(str(path)) as conn:
        for table in OUTPUT_TABLES:
            conn.execute(f"drop table if exists {table}")


def own_peak_mb() -> float:
    """This process's own peak RSS (VmHWM: unlike ``ru_maxrss``, not inherited at exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _build_child(data_dir: Path, db: Path, customers: int) -> None:
    """Build the seed world (if needed) and the benchmark warehouse; report seconds."""
    seed_db = build_seed_world(data_dir / "seed")
    print(f"resampling {customers:,} customers into {db} ...", flush=True)
    print(json.dumps({"build_seconds": build_warehouse(seed_db, db, customers)}))


def _child(assets: list[str], db: Path, day: date, force_refit: bool) -> None:
    """Run ``assets`` for ``day`` as the daily job does; report run and step seconds, rows."""
    import duckdb

    from seg_pipeline.definitions import build_definitions
    from seg_pipeline.ops.runs import run_daily_range

    defs = build_definitions(settings_for(db.parent, db))
    op_config = {"segmentation_model": {"force_refit": True}} if force_refit else None
    started = time.perf_counter()
    result = run_daily_range(
        defs, day, day, assets=assets, log_level="WARNING", op_config=op_config
    )
    out: dict[str, object] = {"seconds_in_run": time.perf_counter() - started}
    out["step_seconds"] = {
        e.step_key: e.event_specific_data.duration_ms / 1000  # type: ignore[union-attr]
        for e in result.get_step_success_events()
    }
    with duckdb.connect(str(db), read_only=True) as conn:
        for table in assets:
            sql = f"select count(*) from {table} where as_of_date = $as_of_date"
            if table == "segmentation_model":  # the rows it was fitted on
                sql = (
                    "select cast(r.metrics->>'train_rows' as bigint) from model_registry r "
                    "join segmentation_model using (model_version) where as_of_date = $as_of_date"
                )
            out[f"{table}_rows"] = conn.execute(sql, {"as_of_date": day}).fetchall()[0][0]
    out["own_peak_mb"] = own_peak_mb()
    print(json.dumps(out, default=str))


def _run(assets: list[str], db: Path, day: date, force_refit: bool = False) -> dict:
    args = ["--child", ",".join(assets), "--db", str(db), "--day", day.isoformat()]
    result, wall, peak_mb = run_child(
        "benchmarks.bench_segmentation", args + (["--force-refit"] if force_refit else [])
    )
    return {**result, "seconds_with_startup": wall, "peak_rss_mb": peak_mb}


def sanity(db: Path) -> None:
    """Print the model in force on DAY (K, training rows, selection) and the segment sizes."""
    import duckdb

    with duckdb.connect(str(db), read_only=True) as conn:
        model = conn.execute(
            "select model_version, n_segments, r.details->>'k_selection', "
            "cast(r.metrics->>'train_rows' as bigint), r.training_start, r.metrics->>'k_scores' "
            "from model_registry r join segmentation_model using (model_version) "
            "where as_of_date = $as_of_date",
            {"as_of_date": DAY},
        ).fetchall()
        sizes = conn.execute(
            "select segment_id, segment_name, count(*) from customer_segments "
            "where as_of_date = $as_of_date group by all order by 1",
            {"as_of_date": DAY},
        ).fetchall()
    if model:
        version, k, selection, train_rows, window_start, scores = model[0]
        print(f"\nmodel {version}: K = {k} ({selection}), {train_rows:,} training rows "
              f"from {window_start}..{DAY}")  # fmt: skip
        print(f"K scores: {scores}")
    for segment_id, name, n in sizes:
        print(f"  segment {segment_id:>3} {name:<40}{n:>10,}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--rebuild", action="store_true", help="rebuild the benchmark warehouse")
    parser.add_argument("--steps", default=",".join(STEPS), help="comma-separated steps")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--day", type=date.fromisoformat, help=argparse.SUPPRESS)
    parser.add_argument("--force-refit", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ.setdefault("SEG_PSEUDONYMISATION_KEY", "bench-key")  # the warehouse needs one
    os.environ.setdefault("SEG_VAULT_KEY", bench_vault_key())
    if args.child == "build":
        _build_child(args.data_dir, args.db, args.customers)
        return 0
    if args.child:
        _child(args.child.split(","), args.db, args.day, args.force_refit)
        return 0

    db = args.data_dir / f"c{args.customers}" / "warehouse.duckdb"
    build_seconds = None
    if args.rebuild or existing_customers(db) != args.customers:
        # in a child: the children measured later inherit this process's peak RSS at exec
        build_args = ["--child", "build", "--db", str(db), "--data-dir", str(args.data_dir)]
        built, _, _ = run_child(
            "benchmarks.bench_segmentation", [*build_args, "--customers", str(args.customers)]
        )
        build_seconds = round(built["build_seconds"], 1)
        print(f"built in {build_seconds} s", flush=True)
    else:
        print(f"reusing {db}", flush=True)
    reset_outputs(db)
    previous = DAY - timedelta(days=1)
    prep = _run(["segmentation_model", "customer_segments"], db, previous)
    print(f"prepared {previous} (model + segments, untimed) in {prep['seconds_in_run']:.0f} s")

    load = os.getloadavg()[0]
    print(f"\nOne day ({DAY}) at {args.customers:,} customers; load average {load:.2f}")
    print(f"{'step':<22}{'seconds':>10}{'in asset':>10}{'peak RSS':>12}{'(VmHWM)':>10}{'rows':>12}")
    records = []
    for step in args.steps.split(","):
        got = _run([step], db, DAY, force_refit=step == "segmentation_model")
        record = {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()} {os.cpu_count()} cpu",
            "load_average_1m": round(os.getloadavg()[0], 2),
            "date": DAY.isoformat(),
            "customers": args.customers,
            "step": step,
            "rows": got[f"{step}_rows"],
            "seconds": round(got["seconds_in_run"], 2),
            "seconds_in_asset": round(got["step_seconds"].get(step, float("nan")), 2),
            "seconds_with_startup": round(got["seconds_with_startup"], 2),
            "peak_rss_mb": round(got["peak_rss_mb"], 1),
            "own_peak_rss_mb": round(got["own_peak_mb"], 1),
            "build_seconds": build_seconds,
        }
        records.append(record)
        print(f"{step:<22}{record['seconds']:>9.1f}s{record['seconds_in_asset']:>9.1f}s"
              f"{record['peak_rss_mb']:>9.0f} MB{record['own_peak_rss_mb']:>7.0f} MB"
              f"{record['rows']:>12,}", flush=True)  # fmt: skip
    sanity(db)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a", encoding="utf-8") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in records)
    print(f"\nappended {len(records)} lines to {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
