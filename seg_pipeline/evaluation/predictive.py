"""The best any predictive model could do on generated data: an oracle that knows each
customer's true purchase rate, drop-out probability and campaign funnel.

The generator simulates a daily BG/NBD-like process: while alive, a customer places
Poisson(lambda) orders a day; after a day with k orders they drop out with probability
1 - (1 - p)^k. Given the true (lambda, p) and the history observed up to a cut-off C (orders
placed, the last order day t and the k orders on it; none before the generated period), the
probability of being alive at C is

    P(alive) = A / (A + D),  A = (1 - p)^k * exp(-lambda * (C - t)),  D = 1 - (1 - p)^k

(1 for a customer without an order), and of ordering within h days P(alive) *
(1 - exp(-lambda * h)) (the next-order curve at h: the same). The campaign platform records a
send as converted when it was clicked and the customer ordered that day: an extra order the send
caused (probability persuade after a click, while alive) or one they placed anyway (at least one
of Poisson(lambda)), so a send on a channel converts with probability

    P(alive) * min(open * channel factor, 0.95) * click * (1 - (1 - persuade) * exp(-lambda))

(truth written before the planted uplift: P(alive) * min(...) * click * convert). Cancellations,
extra orders caused by campaigns and first-day orders of new sign-ups are left out of P(alive),
so the oracle is a close upper reference, not an exact bound.

Reads the generator's truth file; nothing that produces scores imports this module.
"""

from __future__ import annotations

import json
from datetime import date
from functools import partial
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from seg_pipeline.evaluation.truth import TRUTH_FILE, read_truth
from seg_pipeline.models.store import ModelStore
from seg_pipeline.predictive.config import PredictiveConfig, Target
from seg_pipeline.resources import query_frame, read_sql

RATE_COLUMNS = (
    "customer_id",
    "lambda",
    "p_dropout",
    "campaign_open_p",
    "campaign_click_p",
    "campaign_persuade_p",
    "campaign_convert_p",  # truth written before the planted uplift
)


def read_rates(truth_dir: Path) -> pl.DataFrame | None:
    """customer_id, true daily purchase rate, drop-out probability and campaign funnel
    probabilities (with the channel factors of the generator's parameters in ``open_factor_*``
    columns and its cap in ``max_open_p``), if a truth file exists."""
    path = Path(truth_dir) / TRUTH_FILE
    if not path.exists():
        return None
    present = pl.read_parquet_schema(path)
    rates = read_truth(truth_dir, tuple(c for c in RATE_COLUMNS if c in present))
    params = Path(truth_dir) / "params.json"
    funnel = json.loads(params.read_text()).get("campaign_funnel") if params.exists() else None
    if funnel is None or "campaign_click_p" not in rates.columns:
        # truth written before the campaign funnel was kept: no response oracle
        return rates.drop(c for c in RATE_COLUMNS[3:] if c in rates.columns)
    return rates.with_columns(
        pl.lit(funnel["max_open_p"]).alias("max_open_p"),
        *(
            pl.lit(factor).alias(f"open_factor_{channel}")
            for channel, factor in funnel["channel_open_factor"].items()
        ),
    )


def oracle_scores(
    conn: duckdb.DuckDBPyConnection,
    rows: pl.DataFrame,
    cutoff: date,
    target: Target,
    rates: pl.DataFrame,
) -> np.ndarray:
    """The oracle's probability of ``target`` for each of ``rows`` (training rows of
    ``cutoff``: customer_id, and the channel or horizon the target is asked at)."""
    history = query_frame(conn, read_sql("evaluation/order_history"), {"as_of_date": cutoff})
    rows = rows.join(rates, on="customer_id", how="left", maintain_order="left").join(
        history, on="customer_id", how="left", maintain_order="left"
    )
    if rows["lambda"].null_count():
        raise ValueError(f"{rows['lambda'].null_count()} scored customers are not in the truth")
    lam = rows["lambda"].to_numpy()
    p = rows["p_dropout"].to_numpy()
    k = rows["orders_on_last_day"].fill_null(0).to_numpy().astype(float)
    since = (
        rows.select((pl.lit(cutoff) - pl.col("last_order_date")).dt.total_days().fill_null(0))
        .to_series()
        .to_numpy()
    )
    stays = (1 - p) ** k
    alive_weight = stays * np.exp(-lam * since)
    alive = np.where(k > 0, alive_weight / (alive_weight + (1 - stays)), 1.0)
    if target.name == "response":
        factor = rows.select(
            pl.coalesce(
                pl.when(pl.col("channel") == c[len("open_factor_") :]).then(pl.col(c))
                for c in rows.columns
                if c.startswith("open_factor_")
            )
        ).to_series()
        opens = np.minimum(
            rows["campaign_open_p"].to_numpy() * factor.to_numpy(), rows["max_open_p"].to_numpy()
        )
        clicks = alive * opens * rows["campaign_click_p"].to_numpy()
        if "campaign_persuade_p" not in rows.columns:
            return clicks * rows["campaign_convert_p"].to_numpy()
        persuade = rows["campaign_persuade_p"].to_numpy()
        return clicks * (1 - (1 - persuade) * np.exp(-lam))
    horizon = (
        rows["order_within_days"].to_numpy() if target.name == "next_order" else target.horizon_days
    )
    buys = alive * (1 - np.exp(-lam * horizon))
    return 1 - buys if target.positive_when_no_order else buys


def _roc_auc(target: Target, rows: pl.DataFrame, y: np.ndarray, score: np.ndarray) -> float:
    from seg_pipeline.predictive.training import measure

    return measure(target, rows, y, score, is_probability=False)["roc_auc"]


def against_truth(
    conn: duckdb.DuckDBPyConnection, models: ModelStore, day: date, rates: pl.DataFrame
) -> dict[str, dict[str, float | str]]:
    """Per target with a champion on ``day``: ROC AUC of the champion, the best baseline and the
    oracle on the champion's validation cut-off, rows rebuilt with the champion's settings."""
    from seg_pipeline.predictive import training
    from seg_pipeline.predictive.daily import load_score_model

    champions = query_frame(conn, read_sql("predictive/champions_of_day"), {"as_of_date": day})
    out: dict[str, dict[str, float | str]] = {}
    for target_name, version in champions.iter_rows():
        if version is None or (target_name == "response" and "max_open_p" not in rates.columns):
            continue
        found = models.version(conn, version)
        assert found is not None
        model = load_score_model(conn, models, target_name, version)
        settings = PredictiveConfig(**found.params)
        cutoff = date.fromisoformat(found.details["validation_cutoff"])
        sizes = training.snapshot_sizes(conn, found.training_end)
        rows = training.cutoff_rows(
            conn, cutoff, sizes[cutoff], model.target, found.training_end, settings
        )
        y = rows["_label"].to_numpy()

        roc_auc = partial(_roc_auc, model.target, rows, y)
        baselines = {
            name: roc_auc(score)
            for name, score in training.baseline_scores(conn, rows, model.target).items()
        }
        best = max(baselines, key=baselines.get)
        oracle = roc_auc(oracle_scores(conn, rows, cutoff, model.target, rates))
        auc = roc_auc(model.predict(rows))
        gap = oracle - baselines[best]
        out[target_name] = {
            "champion": version,
            "validation_cutoff": cutoff.isoformat(),
            "model_roc_auc": round(float(auc), 4),
            "best_baseline": best,
            "best_baseline_roc_auc": round(float(baselines[best]), 4),
            "oracle_roc_auc": round(float(oracle), 4),
            "headroom": round(float(oracle - auc), 4),
            "gap_closed": round(float((auc - baselines[best]) / gap), 3) if gap > 0 else None,
        }
    return out
