"""`make demo`: generate the last N days of sample data and run the pipeline over them.

The run goes through the local Dagster instance ($DAGSTER_HOME), so it appears in the UI
(`make ui`) with its materializations, metadata and lineage.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from datetime import UTC, date, datetime, timedelta

from dagster import DagsterInstance

from seg_pipeline.generator import GeneratorConfig, generate
from seg_pipeline.ops.runs import run_daily_range
from seg_pipeline.resources import Warehouse, query_frame, read_sql
from seg_pipeline.settings import Settings


def table_counts(warehouse: Warehouse) -> list[tuple[str, int]]:
    """Rows per warehouse table, schema-qualified, sorted by name."""
    with warehouse.connection() as conn:
        tables = conn.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() "
            "WHERE NOT temporary ORDER BY schema_name, table_name"
        ).fetchall()
        return [
            (
                name if schema == "main" else f"{schema}.{name}",
                int(conn.execute(f'SELECT count(*) FROM "{schema}"."{name}"').fetchone()[0]),
            )
            for schema, name in tables
        ]


def print_segments(warehouse: Warehouse, day: date) -> None:
    """The day's segments: name, size and the surrogate-tree rule that describes each."""
    with warehouse.connection() as conn:
        rows = query_frame(
            conn, read_sql("segmentation/segment_profiles_of_day"), {"as_of_date": day}
        ).rows()
    print(f"\nSegments on {day} (table segment_profiles; plots in the UI)")
    for segment_id, name, n, share, rules in rows:
        first_rule = (rules or "").split(" OR ")[0]
        print(f"  {segment_id:>3} {name:<26} {n:>7,} {share:>6.1%}  {first_rule}")


def demo_horizons(days: int) -> dict[str, int]:
    """Predictive horizons that a demo of ``days`` days can train on (a training set needs
    about twice the horizon of history; production defaults are 90, 30 and 60 days, and 7 for
    campaign response)."""
    return {
        "churn_horizon_days": max(7, days // 4),
        "purchase_horizon_days": max(5, days // 8),
        "next_order_horizon_days": max(7, days // 4),
        "cutoff_every_days": max(2, days // 15),
    }


def print_models(warehouse: Warehouse, day: date) -> None:
    """Each target's champion on ``day``: its validation figures beside the best baseline."""
    with warehouse.connection() as conn:
        rows = query_frame(
            conn, read_sql("predictive/champions_with_figures"), {"as_of_date": day}
        ).rows()
    print(f"\nPredictive models on {day} (table predictive_models; customer_scores per customer)")
    for target, horizon, version, metrics, details in rows:
        if version is None:
            print(f"  {target:<9} {horizon:>3} days: no champion yet")
            continue
        metrics, details = json.loads(metrics), json.loads(details)
        name, best = max(details["baselines"].items(), key=lambda kv: kv[1]["roc_auc"])
        print(
            f"  {target:<9} {horizon:>3} days: {details['family']} ROC AUC {metrics['roc_auc']:.3f}"
            f" (best baseline {name} {best['roc_auc']:.3f}), calibration error "
            f"{metrics['ece']:.3f}, validation cut-off {details['validation_cutoff']}"
        )
        dates = details.get("next_order_dates")
        if dates:
            model, gap = dates["model"], dates["average_gap"]
            print(
                f"  {'':<9} {'':>3}       expected dates: concordance {model['concordance']:.3f}"
                f" (average gap {gap['concordance']:.3f}), error {model['mae_days']:.1f} days"
                f" ({gap['mae_days']:.1f})"
            )


def print_activation(warehouse: Warehouse, day: date) -> None:
    """The day's audiences per playbook campaign and the lift measured so far."""
    with warehouse.connection() as conn:
        audiences = query_frame(
            conn, read_sql("activation/audience_counts"), {"as_of_date": day}
        ).rows()
        lift = query_frame(conn, read_sql("activation/lift_of_day"), {"as_of_date": day}).rows()
    print(f"\nCampaign audiences on {day} (sent the next day; files under $SEG_EXPORT_DIR)")
    for campaign, channel, treated, holdout in audiences:
        print(f"  {campaign:<24} {channel:<6} {treated:>6,} treated {holdout:>5,} holdout")
    if not audiences:
        print("  nobody qualified (playbook.yaml)")
    for campaign, sends, n1, n0, lift_pp, low, high, conclusion in lift:
        figures = f"{lift_pp:+.1f} points [{low:+.1f}, {high:+.1f}]" if lift_pp is not None else ""
        print(f"  lift {campaign:<19} {sends:>3} sends, {n1:,} vs {n0:,}: {figures} {conclusion}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--messiness", type=float, default=0.02)
    parser.add_argument(
        "--end", type=date.fromisoformat, default=None, help="last day (default: yesterday)"
    )
    args = parser.parse_args(argv)
    # Dagster flags single-run backfills (beta) and partitioned checks (preview) on every
    # definition, from the definitions module's import on; the demo output is for the data.
    warnings.filterwarnings("ignore", message=".*currently in (beta|preview).*")
    from seg_pipeline.definitions import build_definitions

    settings = Settings.from_env()
    end = args.end or datetime.now(UTC).date() - timedelta(days=1)
    start = end - timedelta(days=args.days - 1)

    began = time.perf_counter()
    print(f"Generating {args.days} days ({start}..{end}) for {args.customers} customers ...")
    summary = generate(
        GeneratorConfig(
            landing_dir=settings.landing_dir,
            truth_dir=settings.truth_dir,
            start_date=start,
            end_date=end,
            n_customers=args.customers,
            seed=args.seed,
            messiness=args.messiness,
        )
    )
    generated = time.perf_counter()
    print(f"  done in {generated - began:.1f} s: {len(summary.files)} files")

    horizons = demo_horizons(args.days)
    print(f"Materializing every daily asset for {start}..{end} as one backfill run ...")
    print(
        f"  predictive horizons for {args.days} days of history: churn "
        f"{horizons['churn_horizon_days']} days, purchase {horizons['purchase_horizon_days']} "
        f"days, next order {horizons['next_order_horizon_days']} days"
    )
    result = run_daily_range(
        build_definitions(settings),
        start,
        end,
        instance=DagsterInstance.get(),
        raise_on_error=False,
        log_level="INFO",
        op_config={"predictive_models": horizons},
    )
    ok = result.success
    finished = time.perf_counter()
    print(f"  {'succeeded' if ok else 'FAILED'} in {finished - generated:.1f} s")

    warehouse = Warehouse(database=str(settings.warehouse_path))
    print("\nRows per table")
    for table, rows in table_counts(warehouse):
        print(f"  {table:<28} {rows:>12,}")
    if ok:
        print_segments(warehouse, end)
        print_models(warehouse, end)
        print_activation(warehouse, end)
    print(f"\nWarehouse:  {settings.warehouse_path}")
    print(f"Landing:    {settings.landing_dir}")
    print("Dagster UI: make ui, then open http://localhost:3000 (lineage under Assets)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
