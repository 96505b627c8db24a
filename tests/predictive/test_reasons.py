"""Per-customer churn reasons on a hand-made example: they name real inputs, point the right
way and add up to the model's score."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from seg_pipeline.predictive.config import Target
from seg_pipeline.predictive.model import ScoreModel, fit_candidate

CHURN = Target("churn", 30, "churn_risk")
TOPICS = ("delivery", "quality", "price", None)


def _customers(n: int, seed: int) -> tuple[pl.DataFrame, np.ndarray]:
    """Churn driven by long recency and by reviews about delivery; noise inputs besides."""
    rng = np.random.default_rng(seed)
    recency = rng.integers(0, 200, n).astype(float)
    recency[rng.random(n) < 0.05] = np.nan  # never ordered
    topic = rng.choice(len(TOPICS), n)
    orders = rng.poisson(3, n)
    logit = 0.03 * (np.nan_to_num(recency, nan=150) - 100) + 2.0 * (topic == 0) - 0.5
    churned = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    frame = pl.DataFrame(
        {
            "as_of_date": [date(2026, 3, 1)] * n,
            "customer_id": [f"C{i:06d}" for i in range(n)],
            "recency_days": recency,
            "count_orders": orders,
            "noise": rng.normal(size=n),
            "has_marketing_consent": rng.random(n) < 0.5,
            "dominant_review_topic": [TOPICS[t] for t in topic],
            "days_to_next_order": [None] * n,
        },
        schema_overrides={"days_to_next_order": pl.Int64},
    )
    return frame, churned


def _example() -> pl.DataFrame:
    """Two customers: long gone and unhappy with delivery; a regular who ordered yesterday."""
    return pl.DataFrame(
        {
            "as_of_date": [date(2026, 3, 1)] * 2,
            "customer_id": ["GONE", "REGULAR"],
            "recency_days": [190.0, 1.0],
            "count_orders": [3, 3],
            "noise": [0.0, 0.0],
            "has_marketing_consent": [True, True],
            "dominant_review_topic": ["delivery", "quality"],
            "days_to_next_order": [None, None],
        },
        schema_overrides={"days_to_next_order": pl.Int64},
    )


@pytest.fixture(scope="module", params=["hist_gradient_boosting", "logistic_regression"])
def model(request: pytest.FixtureRequest) -> ScoreModel:
    train, y_train = _customers(4000, seed=1)
    valid, y_valid = _customers(1500, seed=2)
    return fit_candidate(
        request.param, CHURN, train, y_train, valid, y_valid, excluded=set(), seed=0
    )


def test_reasons_name_real_inputs_and_point_the_right_way(model: ScoreModel) -> None:
    gone, regular = model.reasons(_example(), top=3)
    assert model.features == [
        "recency_days",
        "count_orders",
        "noise",
        "has_marketing_consent",
        "dominant_review_topic",
    ]
    # the customer who left: long recency and delivery complaints are the two main reasons
    assert {r["feature"] for r in gone[:2]} == {"recency_days", "dominant_review_topic"}
    by_feature = {r["feature"]: r for r in gone}
    assert by_feature["recency_days"]["value"] == "190.0"
    assert by_feature["dominant_review_topic"]["value"] == "delivery"
    assert all(r["impact"] > 0 for r in gone)
    assert [r["impact"] for r in gone] == sorted((r["impact"] for r in gone), reverse=True)
    # the regular: a recent order lowers the risk, so it is no reason for it
    assert "recency_days" not in {r["feature"] for r in regular}
    assert model.contributions(_example())[1, 0] < 0


def test_contributions_add_up_to_the_models_log_odds(model: ScoreModel) -> None:
    frame, _ = _customers(300, seed=3)
    raw = model.raw_probability(model.matrix(frame))
    log_odds = np.log(raw / (1 - raw))
    total = model.contributions(frame).sum(axis=1)
    # the same base value for every customer: the rest is split exactly among the inputs
    np.testing.assert_allclose(log_odds - total, (log_odds - total)[0], atol=1e-6)


def test_an_input_missing_on_every_training_row_is_left_out() -> None:
    """A new deployment's first days: no customer has e.g. a review yet."""
    train, y_train = _customers(1000, seed=4)
    valid, y_valid = _customers(400, seed=5)
    empty = pl.Series("avg_review_rating", [None] * 1000, dtype=pl.Float64)
    fitted = fit_candidate(
        "hist_gradient_boosting",
        CHURN,
        train.with_columns(empty),
        y_train,
        valid.with_columns(empty[:400]),
        y_valid,
        excluded=set(),
        seed=0,
    )
    assert "avg_review_rating" not in fitted.features
    assert fitted.info["inputs_missing_in_training"] == ["avg_review_rating"]
    assert fitted.predict(_example().with_columns(empty[:2])).shape == (2,)
