"""`make simulate`: the closed loop on generated data.

History is generated and loaded as one backfill (without the activation stage: nobody was sent
anything by this pipeline then). Then, day by day: the generator makes the day, reading the
pipeline's delivery exports of the day before (treated customers receive those campaigns and
respond with their planted uplift, holdout customers get nothing); the daily job runs for the
day and exports the next day's audiences. At the end the lift ``campaign_lift`` measured per
playbook campaign is printed beside the uplift the generator planted in the treated customers
(from its truth folder, read only here and by the evaluation checks).
"""

from __future__ import annotations

import argparse
import shutil
import time
import warnings
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

from dagster import DagsterInstance

from seg_pipeline.demo import demo_horizons
from seg_pipeline.generator import GeneratorConfig, generate
from seg_pipeline.ops.runs import run_daily_range
from seg_pipeline.resources import Warehouse, query_frame, read_sql
from seg_pipeline.settings import Settings

HISTORY_GROUPS = ("raw", "staging", "privacy", "features", "segmentation", "predictive")


def generator_config(
    settings: Settings, args: argparse.Namespace, end: date, write_from: date | None
) -> GeneratorConfig:
    return GeneratorConfig(
        landing_dir=settings.landing_dir,
        truth_dir=settings.truth_dir,
        start_date=args.start,
        end_date=end,
        n_customers=args.customers,
        seed=args.seed,
        messiness=args.messiness,
        activation_feed_dir=settings.delivery_dir,
        write_from=write_from,
    )


# The activation tables left out of the history: nobody was sent anything by this pipeline
# then (the uplift model does learn from the history's send log).
CAMPAIGN_TABLES = ("recommendations", "audiences", "campaign_exports", "campaign_lift")


def history_assets(defs: object) -> list[str]:
    """Every asset of the daily job but the playbook's campaigns and their exports."""
    keys = defs.resolve_all_asset_keys()  # type: ignore[attr-defined]
    return sorted(k.to_user_string() for k in keys if k.to_user_string() not in CAMPAIGN_TABLES)


def last_scored_day(settings: Settings) -> date:
    """The latest day of customer_scores in the warehouse (where ``--continue`` resumes)."""
    warehouse = Warehouse(database=str(settings.warehouse_path))
    with warehouse.connection() as conn:
        frame = query_frame(conn, read_sql("activation/last_scored_day"), {})
    if frame.is_empty() or frame["as_of_date"][0] is None:
        raise SystemExit(f"--continue: {settings.warehouse_path} holds no customer_scores")
    return frame["as_of_date"][0]


def lift_against_planted(settings: Settings, day: date) -> list[dict[str, object]]:
    """Per playbook campaign: the lift measured on ``day`` and the uplift the generator planted
    in its treated customers (mean over the measured sends, weighted by treated customers)."""
    from seg_pipeline.evaluation.activation import planted_lift

    warehouse = Warehouse(database=str(settings.warehouse_path))
    with warehouse.connection() as conn:
        sends = query_frame(conn, read_sql("activation/measured_sends"), {"as_of_date": day})
        pooled = query_frame(conn, read_sql("activation/lift_of_day"), {"as_of_date": day})
    rows = []
    for row in pooled.iter_rows(named=True):
        mine = sends.filter(sends["playbook_campaign"] == row["playbook_campaign"])
        weights, planted = [], []
        for send in mine.iter_rows(named=True):
            effect = planted_lift(
                settings.truth_dir, send["campaign_id"], send["measurement_window_days"]
            )
            weights.append(send["n_treated"])
            planted.append(effect["p_any_non_cancelled_order"])
        mean = sum(w * p for w, p in zip(weights, planted, strict=True)) / max(sum(weights), 1)
        low, high = row["low_points"], row["high_points"]
        rows.append(
            {
                **row,
                "planted_points": 100 * mean,
                "covered": low is not None and low <= 100 * mean <= high,
            }
        )
    return rows


def load_history(
    defs: object,
    instance: DagsterInstance,
    settings: Settings,
    args: argparse.Namespace,
    history_end: date,
    horizons: dict,
) -> bool:
    """Generate the history and load it as one backfill; False if the backfill failed."""
    began = time.perf_counter()
    print(f"Generating history {args.start}..{history_end} for {args.customers} customers ...")
    generate(generator_config(settings, args, history_end, None))
    print("Loading it as one backfill (no campaigns of this pipeline yet) ...")
    result = run_daily_range(
        defs,
        args.start,
        history_end,
        instance=instance,
        assets=history_assets(defs),
        op_config=horizons,
        raise_on_error=False,
        log_level="WARNING",
    )
    if not result.success:
        print("  history backfill FAILED")
        return False
    print(f"  done in {time.perf_counter() - began:.0f} s")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--history-days", type=int, default=42)
    parser.add_argument("--days", type=int, default=21, help="days simulated one by one")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--messiness", type=float, default=0.02)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2026, 1, 1))
    parser.add_argument(
        "--continue",
        dest="resume",
        action="store_true",
        help="no history: simulate --days more days after the warehouse's last scored day "
        "(give the --customers, --seed, --start and --history-days of the run that made it)",
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="delete the warehouse, models, landing, truth and export folders of SEG_DATA_DIR "
        "first (make simulate uses its own data folder)",
    )
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*currently in (beta|preview).*")
    from seg_pipeline.definitions import build_definitions

    settings = Settings.from_env()
    if settings.delivery_dir is None:
        settings = replace(settings, delivery_dir=settings.data_dir / "activation_feed")
    if args.fresh:
        for path in (
            settings.landing_dir,
            settings.truth_dir,
            settings.model_dir,
            settings.export_dir,
            settings.delivery_dir,
            settings.data_dir / "plots",
        ):
            if path is not None:
                shutil.rmtree(path, ignore_errors=True)
        for suffix in ("", ".wal", ".lock"):
            Path(f"{settings.warehouse_path}{suffix}").unlink(missing_ok=True)
    defs = build_definitions(settings)
    instance = DagsterInstance.get()
    history_end = args.start + timedelta(days=args.history_days - 1)
    horizons = {"predictive_models": demo_horizons(args.history_days)}
    if args.resume:
        history_end = last_scored_day(settings)
        print(f"Continuing after {history_end} ...")
    elif not load_history(defs, instance, settings, args, history_end, horizons):
        return 1
    day = history_end
    for _ in range(args.days):
        day += timedelta(days=1)
        step = time.perf_counter()
        generate(generator_config(settings, args, day, day))
        result = run_daily_range(
            defs,
            day,
            day,
            instance=instance,
            op_config=horizons,
            raise_on_error=False,
            log_level="WARNING",
        )
        if not result.success:
            print(f"  {day}: daily run FAILED")
            return 1
        print(f"  {day}: generated, run and exported in {time.perf_counter() - step:.0f} s")
    print(f"\nLift on {day}, measured (treated - holdout) against planted, in points")
    covered_all = True
    for row in lift_against_planted(settings, day):
        measured = (
            f"{row['lift_points']:+.2f} [{row['low_points']:+.2f}, {row['high_points']:+.2f}]"
            if row["lift_points"] is not None
            else "-"
        )
        covered_all &= bool(row["covered"])
        print(
            f"  {row['playbook_campaign']:<22} {row['sends']:>3} sends {row['n_treated']:>6,} vs"
            f" {row['n_holdout']:>5,}: measured {measured}, planted {row['planted_points']:+.2f}"
            f" {'covered' if row['covered'] else 'NOT covered'} ({row['conclusion']}); planted"
            f" extra conversions per 1,000 sends {10 * row['planted_points']:.1f}"
        )
    print(f"\nWarehouse: {settings.warehouse_path}\nExports:   {settings.delivery_dir}")
    return 0 if covered_all else 2


if __name__ == "__main__":
    raise SystemExit(main())
