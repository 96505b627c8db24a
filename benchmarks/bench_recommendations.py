"""Benchmark: recommendations on a generated world the tests do not use.

The project's generator makes ``--days`` days for ``--customers`` customers (seed ``--seed``,
default 120 days, 3,000 customers, seed 23) and the project's own daily run loads them up to
``customer_segments`` (about 9 minutes on two shared cores; kept in ``--data-dir`` and reused).
Then, for the default :class:`RecommendationConfig`:

- the time holdout of :func:`evaluate_recommendations` at each cut-off of ``--cutoffs`` (days
  from the start, default 90 and 106) with ``--horizon`` days (default 14): hit rate, recall
  and NDCG at 10 of the method and of global and segment popularity;
- the time to compute and write one day of ``recommendations`` (the last day), twice, and
  whether the two runs gave the same rows.

Results are printed and appended as one JSON line to
``benchmarks/results/recommendations.jsonl``.

    python -m benchmarks.bench_recommendations [--data-dir PATH] [--days 120]
        [--customers 3000] [--seed 23] [--cutoffs 90,106] [--horizon 14]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from benchmarks.common import bench_vault_key

RESULTS = Path(__file__).parent / "results" / "recommendations.jsonl"
DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "bench_recommendations"
START = date(2026, 1, 1)
ASSETS = [
    "raw_crm_customers",
    "raw_orders",
    "raw_web_events",
    "raw_reviews",
    "raw_campaign_sends",
    "stg_crm_customers",
    "stg_orders",
    "stg_web_events",
    "stg_reviews",
    "stg_campaign_sends",
    "web_session_fragments",
    "review_topic_model",
    "review_nlp",
    "customer_feature_state",
    "customer_features",
    "segmentation_model",
    "customer_segments",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=23)
    parser.add_argument("--cutoffs", default="90,106")
    parser.add_argument("--horizon", type=int, default=14)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*currently in (beta|preview).*")
    os.environ.setdefault("SEG_PSEUDONYMISATION_KEY", "bench-key-not-a-secret")
    os.environ.setdefault("SEG_VAULT_KEY", bench_vault_key())

    from seg_pipeline.activation.recommendations import (
        RECOMMENDATIONS_TABLE,
        RecommendationConfig,
        evaluate_recommendations,
        recommendations_rows,
    )
    from seg_pipeline.definitions import build_definitions
    from seg_pipeline.generator import GeneratorConfig, generate
    from seg_pipeline.ops.runs import run_daily_range
    from seg_pipeline.resources import Warehouse, transaction
    from seg_pipeline.settings import Settings
    from seg_pipeline.tables import write_day

    root = args.data_dir
    end = START + timedelta(days=args.days - 1)
    settings = Settings.from_env(
        {
            "SEG_DATA_DIR": str(root),
            "SEG_WAREHOUSE": str(root / "warehouse.duckdb"),
            "SEG_PARTITIONS_START": START.isoformat(),
        }
    )
    if not (root / ".built").exists():
        began = time.perf_counter()
        generate(
            GeneratorConfig(
                landing_dir=settings.landing_dir,
                truth_dir=settings.truth_dir,
                start_date=START,
                end_date=end,
                n_customers=args.customers,
                seed=args.seed,
                messiness=0.02,
            )
        )
        result = run_daily_range(
            build_definitions(settings), START, end, assets=ASSETS, log_level="WARNING"
        )
        assert result.success
        (root / ".built").touch()
        print(
            f"built {args.days} days x {args.customers} customers in "
            f"{time.perf_counter() - began:.0f} s"
        )

    config = RecommendationConfig()
    warehouse = Warehouse(
        database=str(settings.warehouse_path),
        pseudonymisation_key=os.environ["SEG_PSEUDONYMISATION_KEY"],
    )
    record: dict = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "days": args.days,
        "customers": args.customers,
        "seed": args.seed,
        "settings": config.model_dump(),
        "holdouts": [],
    }
    with warehouse.connection() as conn:
        for offset in (int(d) for d in args.cutoffs.split(",")):
            cutoff = START + timedelta(days=offset - 1)
            began = time.perf_counter()
            figures = evaluate_recommendations(conn, cutoff, args.horizon, config)
            figures["seconds"] = round(time.perf_counter() - began, 1)
            record["holdouts"].append(figures)
            print(json.dumps(figures))
        seconds = []
        frames = []
        for _ in range(2):
            began = time.perf_counter()
            with transaction(conn):
                frames.append(write_day(conn, RECOMMENDATIONS_TABLE, end, config))
            seconds.append(round(time.perf_counter() - began, 2))
        began = time.perf_counter()
        recommendations_rows(conn, end, config)
        record["day"] = {
            "day": end.isoformat(),
            "rows": frames[0].height,
            "customers": frames[0]["customer_id"].n_unique(),
            "model_share": round(float((frames[0]["source"] == "model").mean()), 4),
            "write_day_seconds": seconds,
            "compute_seconds": round(time.perf_counter() - began, 2),
            "same_rows_twice": frames[0].equals(frames[1]),
        }
    print(json.dumps(record["day"]))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a", encoding="utf-8") as out:
        out.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
