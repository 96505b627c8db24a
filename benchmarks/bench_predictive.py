"""Benchmark: train the predictive models on a sample and score a day at 1,000,000 customers.

Reads the first day of ``make bench-day``'s data (1,000,000 customers; run ``make bench-day``
once first, it is cached under ``data/bench_day``), on a copy of its warehouse:

- **train**: as many rows as ``predictive_models`` trains on by default (``training_cutoffs`` x
  ``max_rows_per_cutoff`` = 300,000) and a validation cut-off's worth (50,000) drawn (seeded)
  from the day's ``customer_features``; two days of history hold no 90-day labels, so each row
  is labelled by a draw from the oracle's probability of each target (the generator's true
  rates and campaign funnel, ``seg_pipeline/evaluation/predictive.py``): a real signal of the
  real shape. Response rows get a channel drawn with the generator's shares; next-order rows are
  a quarter as many customers at each of the curve's four horizons. Both candidates are fitted
  and calibrated as ``predictive_models`` fits them, the best saved in the model store and made
  the day's champion;
- **score**: ``customer_scores`` of the day as the asset computes it: every customer scored by
  the four champions (churn, purchase, response on each channel, the next-order curve at its
  four horizons), churn reasons (exact Shapley values) for the riskiest decile.

Each phase runs in a child process: wall seconds and peak resident memory are reported, and
appended to ``benchmarks/results/predictive.jsonl``.

    python -m benchmarks.bench_predictive [--data-dir DIR] [--reasons-top-share 0.1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import run_child
from seg_pipeline.settings import REPO_ROOT

DAY = date(2026, 1, 1)
RESULTS = Path(__file__).parent / "results" / "predictive.jsonl"
KEY = "bench-key"


def _train(warehouse: Path, model_dir: Path, truth_dir: Path) -> dict:
    import numpy as np
    import polars as pl

    from seg_pipeline.evaluation.predictive import oracle_scores, read_rates
    from seg_pipeline.models.store import ModelStore
    from seg_pipeline.predictive.config import PredictiveConfig
    from seg_pipeline.predictive.daily import MODELS_SCHEMA
    from seg_pipeline.predictive.training import best_candidate, register_model_inputs
    from seg_pipeline.resources import Warehouse, query_frame, read_sql, write_frame

    settings = PredictiveConfig()
    n_train = settings.training_cutoffs * settings.max_rows_per_cutoff
    rates = read_rates(truth_dir)
    assert rates is not None
    store = ModelStore(model_dir=str(model_dir))
    timings: dict[str, float] = {}
    with Warehouse(database=str(warehouse), pseudonymisation_key=KEY).connection() as conn:
        started = time.perf_counter()
        register_model_inputs(conn)
        features = query_frame(conn, read_sql("predictive/scoring_rows"), {"as_of_date": DAY})
        customers = features.sample(n_train + settings.max_rows_per_cutoff, seed=settings.seed)
        timings["read_seconds"] = round(time.perf_counter() - started, 2)
        rng = np.random.default_rng(settings.seed)
        versions = {}
        for target in settings.targets():
            rows, n = _bench_rows(customers, target, n_train, rng)
            if target.name == "response" and "max_open_p" not in rates.columns:
                continue  # a truth folder written before the campaign funnel was kept
            p = oracle_scores(conn, rows, DAY, target, rates)
            labels = _draw_labels(rows, target, p, rng)
            train, valid = rows[:n], rows[n:]
            y_train, y_valid = labels[:n], labels[n:]
            model, candidates = best_candidate(target, train, y_train, valid, y_valid, settings)
            for family, figures in candidates.items():
                timings[f"{target.name}_{family}_seconds"] = figures["fit_seconds"]
                timings[f"{target.name}_{family}_roc_auc"] = round(figures["roc_auc"], 4)
            timings[f"{target.name}_train_rows"] = n
            version = f"bench-{target.name}"
            store.save(conn, model, version, training_end=DAY)
            versions[target.name] = version
        champions = pl.DataFrame(
            [
                {"as_of_date": DAY, "target": t, "horizon_days": 0, "champion_version": v}
                for t, v in versions.items()
            ],
            schema=MODELS_SCHEMA,
        )
        write_frame(conn, "predictive_models", champions, "as_of_date", DAY)
    return {"train_rows": n_train, **timings}


def _bench_rows(customers: Any, target: Any, n_train: int, rng: Any) -> tuple[Any, int]:
    """The rows a target trains on from the sampled ``customers`` (training rows first) and
    how many are training rows: a customer per row (churn, purchase), a send per row on a
    channel drawn with the generator's shares (response), a customer at every horizon of the
    next-order curve with the customer sample shrunk as ``cutoff_rows`` shrinks it."""
    import polars as pl

    if target.name == "response":
        channels = rng.choice(["email", "sms", "push"], size=customers.height, p=[0.65, 0.15, 0.2])
        return customers.with_columns(pl.Series("channel", channels)), n_train
    if target.name == "next_order":
        grid = len(target.conditions)
        fewer = customers.head(customers.height // grid)
        horizons = pl.DataFrame({"order_within_days": list(target.conditions)})
        return fewer.join(horizons, how="cross"), (n_train // grid) * grid
    return customers, n_train


def _draw_labels(rows: Any, target: Any, p: Any, rng: Any) -> Any:
    """Labels drawn from the oracle's probabilities ``p``; on the next-order curve one draw
    per customer, so "an order within d days" never goes from yes to no as d grows."""
    import numpy as np

    if target.name != "next_order":
        return (rng.random(rows.height) < p).astype(np.int8)
    grid = len(target.conditions)
    u = np.repeat(rng.random(rows.height // grid), grid)
    return (u < p).astype(np.int8)


def _score(warehouse: Path, model_dir: Path, top_share: float) -> dict:
    from seg_pipeline.models.store import ModelStore
    from seg_pipeline.predictive.daily import CustomerScoresConfig, customer_scores_rows
    from seg_pipeline.resources import Warehouse

    store = ModelStore(model_dir=str(model_dir))
    with Warehouse(database=str(warehouse), pseudonymisation_key=KEY).connection() as conn:
        started = time.perf_counter()
        settings = CustomerScoresConfig(reasons_top_share=top_share)
        frame = customer_scores_rows(conn, DAY, settings, store)
        seconds = time.perf_counter() - started
    explained = frame.filter(frame["churn_reasons"].is_not_null()).height
    return {
        "customers": frame.height,
        "with_reasons": explained,
        "score_seconds": round(seconds, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=REPO_ROOT / "data" / "bench_day")
    parser.add_argument("--reasons-top-share", type=float, default=0.1)
    parser.add_argument("--child", choices=["train", "score"])
    parser.add_argument("--warehouse", type=Path)
    parser.add_argument("--model-dir", type=Path)
    args = parser.parse_args(argv)
    if args.child == "train":
        print(json.dumps(_train(args.warehouse, args.model_dir, args.data_dir / "generator_truth")))
        return 0
    if args.child == "score":
        print(json.dumps(_score(args.warehouse, args.model_dir, args.reasons_top_share)))
        return 0

    source = args.data_dir / "day1.duckdb"
    if not source.exists():
        raise SystemExit(f"{source} is missing: run `make bench-day` once first")
    with tempfile.TemporaryDirectory() as tmp:
        warehouse, model_dir = Path(tmp) / "warehouse.duckdb", Path(tmp) / "models"
        shutil.copy(source, warehouse)
        shutil.copytree(args.data_dir / "models", model_dir)
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        common = ["--data-dir", str(args.data_dir), "--warehouse", str(warehouse)]
        common += ["--model-dir", str(model_dir)]
        trained, train_wall, train_mb = run_child(
            "benchmarks.bench_predictive", ["--child", "train", *common], env
        )
        scored, score_wall, score_mb = run_child(
            "benchmarks.bench_predictive",
            ["--child", "score", *common, "--reasons-top-share", str(args.reasons_top_share)],
            env,
        )
    result = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "train": {**trained, "wall_seconds": round(train_wall, 1), "peak_mb": round(train_mb)},
        "score": {**scored, "wall_seconds": round(score_wall, 1), "peak_mb": round(score_mb)},
        "reasons_top_share": args.reasons_top_share,
    }
    print(json.dumps(result, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a", encoding="utf-8") as f:
        f.write(json.dumps(result) + "\n")
    print(f"appended to {RESULTS.relative_to(REPO_ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
