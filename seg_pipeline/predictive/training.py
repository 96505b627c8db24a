"""Point-in-time training sets, the baselines, and a challenger trained and judged on them.

For a training day T and a target with horizon h:

- the **validation cut-off** is V = T - h, the latest day whose label window (V, V + h] has
  fully happened by T;
- the **training cut-offs** are V - h, V - h - step, ... (``training_cutoffs`` of them, those
  with a customer_features snapshot), so every training label ends on or before V: no
  training row knows anything of the validation window.

A row is a customer's customer_features snapshot on a cut-off C and the days to their next
completed order after C (``sql/predictive/training_rows.sql``); the label is derived from it
by the target. Features never read past C, labels never past T.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import duckdb
import numpy as np
import polars as pl

from seg_pipeline.predictive.config import PredictiveConfig, Target
from seg_pipeline.predictive.metrics import date_figures, grouped_metrics, score_metrics
from seg_pipeline.predictive.model import ScoreModel, fit_candidate
from seg_pipeline.resources import bind_params, query_frame, read_sql, run_sql


class NotEnoughHistory(ValueError):
    """The warehouse does not hold the snapshots or labels a training set needs."""


@dataclass(frozen=True)
class CutoffPlan:
    """The cut-offs of one training set."""

    training_day: date
    validation_cutoff: date
    training_cutoffs: tuple[date, ...]  # newest first


def snapshot_sizes(conn: duckdb.DuckDBPyConnection, up_to: date) -> dict[date, int]:
    """Customers per customer_features snapshot day, up to ``up_to``."""
    frame = query_frame(conn, read_sql("predictive/snapshot_sizes"), {"as_of_date": up_to})
    return dict(zip(frame["as_of_date"], frame["customers"], strict=True))


def cutoff_plan(
    day: date, target: Target, settings: PredictiveConfig, available: Collection[date]
) -> CutoffPlan:
    """The cut-offs of a training set for ``target`` trained on ``day`` (module docstring).

    Raises
    ------
    NotEnoughHistory
        When the validation cut-off or every training cut-off has no snapshot.
    """
    h = timedelta(days=target.horizon_days)
    validation = day - h
    if validation not in available:
        raise NotEnoughHistory(
            f"{target.name}: no customer_features snapshot on the validation cut-off "
            f"{validation} ({target.horizon_days} days before {day})"
        )
    step = timedelta(days=settings.cutoff_every_days)
    count = settings.training_cutoffs
    if target.name == "response":
        # a send is a row of one cut-off only: its windows of sends do not overlap
        step = max(step, h)
        count = settings.response_training_cutoffs

    wanted = [validation - h - k * step for k in range(count)]
    training = tuple(c for c in wanted if c in available)
    if not training:
        raise NotEnoughHistory(
            f"{target.name}: no customer_features snapshot on any training cut-off "
            f"({', '.join(str(c) for c in wanted)}); training needs about "
            f"{2 * target.horizon_days} days of history before {day}"
        )
    return CutoffPlan(day, validation, training)


def register_model_inputs(conn: duckdb.DuckDBPyConnection) -> None:
    """Define the table macro ``model_inputs(day)`` on ``conn`` (sql/predictive/model_inputs.sql):
    a model's inputs on a day, the same in training and scoring."""
    run_sql(conn, "predictive/model_inputs")


def cutoff_rows(
    conn: duckdb.DuckDBPyConnection,
    cutoff: date,
    customers: int,
    target: Target,
    known_on: date,
    settings: PredictiveConfig,
) -> pl.DataFrame:
    """Rows of one cut-off (features on ``cutoff``, what happened after it as known on
    ``known_on``) for a seeded sample of about ``max_rows_per_cutoff`` of its ``customers``,
    with the target's label in ``_label``: one row per customer (churn, purchase), per send in
    the window (response: ``sql/predictive/response_rows.sql``) or per customer and horizon of
    the next-order curve (the sample shrunk so the rows stay about as many)."""
    wanted = settings.max_rows_per_cutoff
    if target.name == "next_order":
        wanted = max(1, wanted // len(target.conditions))
    per_million = min(1_000_000, int(np.ceil(wanted / max(customers, 1) * 1e6)))
    sql = read_sql(
        "predictive/response_rows" if target.name == "response" else "predictive/training_rows"
    )
    params = {
        "cutoff_date": cutoff,
        "label_end_date": min(cutoff + timedelta(days=target.horizon_days), known_on),
        "as_of_date": known_on,
        "seed": settings.seed,
        "sample_per_million": per_million,
    }
    register_model_inputs(conn)
    frame = query_frame(conn, sql, bind_params(sql, params))
    if target.name == "next_order":
        grid = pl.DataFrame(
            {"order_within_days": target.conditions}, schema={"order_within_days": pl.Int32}
        )
        frame = frame.join(grid, how="cross")
    if target.name != "response":  # response rows come ordered by customer, day and campaign
        frame = frame.sort("customer_id", *([target.condition] if target.condition else []))
    return frame.with_columns(label(frame, target).alias("_label"))


def label(frame: pl.DataFrame, target: Target) -> pl.Series:
    """1 where the target happened: churn = no completed order within the horizon, purchase =
    one within it (``days_to_next_order`` is null when there was none), next_order = one
    within the row's ``order_within_days``, response = the send converted."""
    if target.name == "response":
        return frame["_converted"].cast(pl.Int8)
    within = frame["order_within_days"] if target.name == "next_order" else target.horizon_days
    ordered = (frame["days_to_next_order"] <= within).fill_null(False)
    return (~ordered if target.positive_when_no_order else ordered).cast(pl.Int8)


def training_set(
    conn: duckdb.DuckDBPyConnection, plan: CutoffPlan, target: Target, settings: PredictiveConfig
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(training rows of every training cut-off stacked, validation rows)."""
    sizes = snapshot_sizes(conn, plan.training_day)

    def rows(cutoff: date) -> pl.DataFrame:
        return cutoff_rows(conn, cutoff, sizes[cutoff], target, plan.training_day, settings)

    train = pl.concat([rows(c) for c in plan.training_cutoffs], how="vertical_relaxed")
    return train, rows(plan.validation_cutoff)


# ---------------------------------------------------------------------------- baselines

BASELINES: tuple[str, ...] = ("recency", "rfm", "bgnbd_prob_alive", "bgnbd_expected_purchases")


def baseline_scores(
    conn: duckdb.DuckDBPyConnection, rows: pl.DataFrame, target: Target
) -> dict[str, np.ndarray]:
    """Each baseline's score of ``rows`` (one cut-off's), oriented so that higher means the
    target is more likely:

    - recency: days since the last completed order (since sign-up for customers without one);
    - rfm: the sum of the RFM quintile scores (sql/segmentation/customer_rfm.sql);
    - bgnbd_prob_alive / bgnbd_expected_purchases: customer_clv on the cut-off (BG/NBD covers
      customers with a purchase; the others score 0);
    - last_response_rate (response only): the customer's conversions per send on the send's
      channel up to the cut-off; their rate on every channel where they had no send of that
      one, 0 without any send.
    """
    cutoff = rows["as_of_date"][0]
    ids = rows.select("customer_id")
    rfm = query_frame(conn, read_sql("segmentation/customer_rfm"), {"as_of_date": cutoff})
    rfm = ids.join(rfm, on="customer_id", how="left", maintain_order="left").select(
        (
            pl.col("rfm_recency_score")
            + pl.col("rfm_frequency_score")
            + pl.col("rfm_monetary_score")
        ).fill_null(0)
    )
    clv = query_frame(
        conn,
        read_sql("predictive/clv_baseline"),
        {"as_of_date": cutoff, "horizon_days": target.horizon_days},
    )
    clv = ids.join(clv, on="customer_id", how="left", maintain_order="left").fill_null(0.0)
    recency = (
        rows.select(pl.coalesce("recency_days", "tenure_days").cast(pl.Float64))
        .to_series()
        .to_numpy()
    )
    toward_purchase = {
        "recency": -recency,
        "rfm": rfm.to_series().to_numpy().astype(float),
        "bgnbd_prob_alive": clv["prob_alive"].to_numpy(),
        "bgnbd_expected_purchases": clv["expected_purchases"].to_numpy(),
    }
    if target.name == "response":
        rate = pl.col("_channel_conversions_before") / pl.col("_channel_sends_before")
        toward_purchase["last_response_rate"] = (
            rows.select(
                pl.when(pl.col("_channel_sends_before") > 0)
                .then(rate)
                .otherwise(pl.col("campaign_conversion_rate"))
                .fill_null(0.0)
                .cast(pl.Float64)
            )
            .to_series()
            .to_numpy()
        )
    sign = -1.0 if target.positive_when_no_order else 1.0
    return {name: sign * score for name, score in toward_purchase.items()}


def measure(
    target: Target, rows: pl.DataFrame, y: np.ndarray, score: np.ndarray, *, is_probability: bool
) -> dict[str, float]:
    """The validation figures of ``score`` on ``rows``: for a target asked at several values of
    an input (channel, horizon), measured within each value and averaged, so a score is not
    credited for ranking one channel or horizon above another."""
    if target.condition is None:
        return score_metrics(y, score, is_probability=is_probability)
    return grouped_metrics(
        y, score, rows[target.condition].to_numpy(), is_probability=is_probability
    )


# ---------------------------------------------------------------------------- challenger


@dataclass
class Challenger:
    """A trained challenger and how every candidate, baseline and the champion did on its
    validation cut-off."""

    model: ScoreModel
    plan: CutoffPlan
    metrics: dict[str, float]
    candidates: dict[str, dict[str, float]]
    baselines: dict[str, dict[str, float]]
    train_rows: int
    valid: pl.DataFrame = field(repr=False)
    y_valid: np.ndarray = field(repr=False)
    champion_metrics: dict[str, float] | None = None
    dates: dict[str, dict[str, float]] | None = None  # next_order: expected dates vs actual


def excluded_inputs(settings: PredictiveConfig) -> set[str]:
    return set() if settings.use_protected_attributes else set(settings.protected_attributes)


def best_candidate(
    target: Target,
    train: pl.DataFrame,
    y_train: np.ndarray,
    valid: pl.DataFrame,
    y_valid: np.ndarray,
    settings: PredictiveConfig,
) -> tuple[ScoreModel, dict[str, dict[str, float]]]:
    """Every family of ``settings.candidates`` fitted and calibrated; the best on ``valid`` by
    ``champion_metric``, and each family's validation figures (with its fitting seconds)."""
    candidates: dict[str, dict[str, float]] = {}
    best: tuple[float, ScoreModel] | None = None
    for family in settings.candidates:
        began = time.perf_counter()
        model = fit_candidate(
            family,
            target,
            train,
            y_train,
            valid,
            y_valid,
            excluded=excluded_inputs(settings),
            seed=settings.seed,
        )
        metrics = measure(target, valid, y_valid, model.predict(valid), is_probability=True)
        candidates[family] = {**metrics, "fit_seconds": round(time.perf_counter() - began, 2)}
        if best is None or metrics[settings.champion_metric] > best[0]:
            best = (metrics[settings.champion_metric], model)
    assert best is not None
    return best[1], candidates


def train_challenger(
    conn: duckdb.DuckDBPyConnection,
    day: date,
    target: Target,
    settings: PredictiveConfig,
) -> Challenger:
    """Train every candidate family on the training cut-offs of ``day``; the best on the
    validation cut-off (by ``champion_metric``) is the challenger.

    Raises
    ------
    NotEnoughHistory
        Too few snapshots, or fewer than ``min_labels`` of either class.
    """
    plan = cutoff_plan(day, target, settings, snapshot_sizes(conn, day))
    train, valid = training_set(conn, plan, target, settings)
    y_train = train["_label"].to_numpy()
    y_valid = valid["_label"].to_numpy()
    for name, y in (("training", y_train), ("validation", y_valid)):
        smallest = int(min(y.sum(), len(y) - y.sum()))
        if smallest < settings.min_labels:
            raise NotEnoughHistory(
                f"{target.name}: the {name} rows hold {smallest} of the rarer label "
                f"(min_labels {settings.min_labels})"
            )
    model, candidates = best_candidate(target, train, y_train, valid, y_valid, settings)
    baselines = {
        name: measure(target, valid, y_valid, score, is_probability=False)
        for name, score in baseline_scores(conn, valid, target).items()
    }
    return Challenger(
        model=model,
        plan=plan,
        metrics=candidates[model.family],
        candidates=candidates,
        baselines=baselines,
        train_rows=train.height,
        valid=valid,
        y_valid=y_valid,
        dates=next_order_dates(model, valid, settings.seed)
        if target.name == "next_order"
        else None,
    )


DATE_SAMPLE = 3_000  # validation customers the concordance of expected dates is measured on


def next_order_dates(
    model: ScoreModel, valid: pl.DataFrame, seed: int
) -> dict[str, dict[str, float]]:
    """The expected days to the next order of a next-order model and of the average-gap
    baseline (the customer's mean days between orders minus the days since the last one, none
    for fewer than two orders or beyond the horizon) against what happened, on a seeded sample
    of the validation customers."""
    horizon = model.target.horizon_days
    customers = valid.filter(pl.col("order_within_days") == max(model.target.conditions))
    if customers.height > DATE_SAMPLE:
        customers = customers.sample(DATE_SAMPLE, seed=seed).sort("customer_id")
    actual = customers["days_to_next_order"].cast(pl.Float64).fill_null(np.nan).to_numpy()
    gap = (
        customers.select(
            (pl.col("avg_days_between_orders") - pl.col("recency_days")).clip(lower_bound=0.0)
        )
        .to_series()
        .cast(pl.Float64)
        .fill_null(np.nan)
        .to_numpy()
    )
    gap = np.where(gap > horizon, np.nan, gap)
    return {
        "model": date_figures(actual, model.expected_days(customers), horizon),
        "average_gap": date_figures(actual, gap, horizon),
    }


def champion_decision(
    challenger: Challenger, champion: ScoreModel | None, metric: str
) -> tuple[bool, str]:
    """(promote?, why): the challenger replaces the champion only if it scores higher on
    ``metric`` on the challenger's validation cut-off, where both are scored (or if the
    champion predicts another horizon than the settings ask for)."""
    new = challenger.metrics[metric]
    if champion is None:
        return True, f"no champion yet; challenger {metric} {new:.4f}"
    if champion.target != challenger.model.target:
        return True, (
            f"the champion predicts a {champion.target.horizon_days}-day horizon, the settings "
            f"ask for {challenger.model.target.horizon_days}; challenger {metric} {new:.4f}"
        )
    old = measure(
        champion.target,
        challenger.valid,
        challenger.y_valid,
        champion.predict(challenger.valid),
        is_probability=True,
    )
    challenger.champion_metrics = old
    cut = challenger.plan.validation_cutoff
    if new > old[metric]:
        return True, f"challenger {metric} {new:.4f} > champion {old[metric]:.4f} on {cut}"
    return False, f"challenger {metric} {new:.4f} <= champion {old[metric]:.4f} on {cut}"


def summary_of(challenger: Challenger) -> dict[str, Any]:
    """The figures of a challenger kept with its model version."""
    return {
        "validation_cutoff": challenger.plan.validation_cutoff.isoformat(),
        "training_cutoffs": [c.isoformat() for c in challenger.plan.training_cutoffs],
        "train_rows": challenger.train_rows,
        "validation_rows": challenger.valid.height,
        "candidates": challenger.candidates,
        "baselines": challenger.baselines,
        "next_order_dates": challenger.dates,
    }
