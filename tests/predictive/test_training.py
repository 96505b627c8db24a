"""Point-in-time training sets, the models against the baselines, calibration and the champion
rule, on ten generated weeks."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from sklearn.metrics import roc_auc_score

from seg_pipeline.evaluation.predictive import oracle_scores, read_rates
from seg_pipeline.features.assets import features_in_full
from seg_pipeline.models.store import ModelStore
from seg_pipeline.predictive.config import PredictiveConfig, Target
from seg_pipeline.predictive.model import MODEL_CLASSES
from seg_pipeline.predictive.training import (
    Challenger,
    NotEnoughHistory,
    champion_decision,
    cutoff_plan,
    cutoff_rows,
    snapshot_sizes,
    train_challenger,
)
from seg_pipeline.resources import query_frame
from seg_pipeline.settings import Settings
from tests.conftest import warehouse_for
from tests.predictive.conftest import HISTORY_END, HISTORY_SETTINGS, HISTORY_START

CHURN, PURCHASE = HISTORY_SETTINGS.targets()
STAGED = ("stg_crm_customers", "stg_orders", "stg_web_events", "stg_reviews", "stg_campaign_sends")


def test_cutoff_plan_keeps_every_training_label_before_the_validation_cutoff() -> None:
    days = {HISTORY_START + timedelta(days=i) for i in range(70)}
    settings = PredictiveConfig(training_cutoffs=6, cutoff_every_days=7)
    plan = cutoff_plan(HISTORY_END, CHURN, settings, days)
    assert plan.validation_cutoff == HISTORY_END - timedelta(days=21)
    # labels of a training cut-off C end on C + 21, on or before the validation cut-off
    assert all(c + timedelta(days=21) <= plan.validation_cutoff for c in plan.training_cutoffs)
    # six wanted, weekly; the two before the first snapshot are left out
    assert plan.training_cutoffs == (
        date(2026, 1, 28),
        date(2026, 1, 21),
        date(2026, 1, 14),
        date(2026, 1, 7),
    )
    with pytest.raises(NotEnoughHistory, match="about 180 days of history"):
        cutoff_plan(
            HISTORY_END, Target("churn", 90, "churn_risk"), settings, days | {date(2025, 12, 11)}
        )
    with pytest.raises(NotEnoughHistory, match="validation cut-off 2026-02-18"):
        cutoff_plan(HISTORY_END, CHURN, settings, days - {date(2026, 2, 18)})


def _snapshot(conn, day: date) -> pl.DataFrame:
    return query_frame(
        conn,
        "SELECT * FROM customer_features WHERE as_of_date = ? ORDER BY customer_id",
        [day],
    )


def test_what_happens_after_a_cutoff_does_not_change_its_training_rows(
    history_copy: Settings,
) -> None:
    """Deleting or shuffling everything after a cut-off C leaves C's features as they were,
    recomputed from the staged rows; deleting everything after C's label window leaves its
    training rows (features and labels) unchanged."""
    cutoff, target = date(2026, 1, 28), CHURN
    label_end = cutoff + timedelta(days=target.horizon_days)
    with warehouse_for(history_copy).connection() as conn:
        size = snapshot_sizes(conn, HISTORY_END)[cutoff]
        rows = cutoff_rows(conn, cutoff, size, target, HISTORY_END, HISTORY_SETTINGS)
        stored = _snapshot(conn, cutoff)
        assert rows["_label"].n_unique() == 2 and rows.height > 500

        # 1. every order after the label window and every later snapshot deleted, the rest
        #    of the order lines stored in another order: the same rows
        conn.execute("DELETE FROM stg_orders WHERE order_date > ?", [label_end])
        conn.execute("DELETE FROM customer_features WHERE as_of_date > ?", [cutoff])
        conn.execute(
            "CREATE OR REPLACE TABLE stg_orders AS "
            "SELECT * FROM stg_orders ORDER BY hash(order_id, line_number)"
        )
        again = cutoff_rows(conn, cutoff, size, target, HISTORY_END, HISTORY_SETTINGS)
        assert_frame_equal(again, rows)

        # 2. the orders and web events after C given to other customers (shuffled), then
        #    everything that arrived after C deleted: C's features recomputed from what is
        #    left are the stored snapshot the training rows were read from
        later = conn.sql(
            "SELECT DISTINCT customer_id FROM stg_orders WHERE order_date > ? ORDER BY 1",
            params=[cutoff],
        ).pl()["customer_id"]
        shuffled = pl.DataFrame(
            {"old": later, "new": later.sample(fraction=1.0, shuffle=True, seed=3)}
        )
        conn.register("shuffled", shuffled)
        for table, day in (("stg_orders", "order_date"), ("stg_web_events", "event_date")):
            conn.execute(
                f"UPDATE {table} SET customer_id = s.new FROM shuffled AS s "
                f"WHERE {table}.customer_id = s.old AND {table}.{day} > ?",
                [cutoff],
            )
        changed = conn.sql(
            "SELECT count(*) FROM stg_orders WHERE order_date > ?", params=[cutoff]
        ).fetchall()[0][0]
        assert changed > 1000
        for table in (*STAGED, "review_nlp"):
            conn.execute(f"DELETE FROM {table} WHERE arrival_date > ?", [cutoff])
        recomputed = features_in_full(conn, cutoff).sort("customer_id")
    assert_frame_equal(recomputed, stored, check_exact=False, rtol=1e-9)
    features = rows.drop("days_to_next_order", "_label")
    assert_frame_equal(
        features,
        stored.filter(pl.col("customer_id").is_in(rows["customer_id"])).select(features.columns),
    )


@pytest.fixture(scope="module")
def challengers(history: Settings) -> dict[str, Challenger]:
    """Each target's challenger trained on the last day of the ten weeks."""
    with warehouse_for(history).connection() as conn:
        return {
            t.name: train_challenger(conn, HISTORY_END, t, HISTORY_SETTINGS)
            for t in (CHURN, PURCHASE)
        }


@pytest.mark.parametrize("target", ["churn", "purchase"])
def test_each_model_beats_every_baseline_and_is_calibrated(
    challengers: dict[str, Challenger], target: str
) -> None:
    challenger = challengers[target]
    model = challenger.metrics
    assert set(challenger.baselines) == {
        "recency",
        "rfm",
        "bgnbd_prob_alive",
        "bgnbd_expected_purchases",
    }
    for name, baseline in challenger.baselines.items():
        assert model["roc_auc"] > baseline["roc_auc"], name
        assert model["pr_auc"] > baseline["pr_auc"], name
    assert model["ece"] < 0.05
    # measured on the validation cut-off only, a cut-off no training label reaches
    assert challenger.valid["as_of_date"].unique().to_list() == [challenger.plan.validation_cutoff]
    assert challenger.valid.height == model["rows"] > 1000
    assert challenger.model.calibration in {"isotonic", "sigmoid"}
    # both candidates were tried; the challenger is the better one on ROC AUC
    assert set(challenger.candidates) == {"hist_gradient_boosting", "logistic_regression"}
    best = max(challenger.candidates, key=lambda f: challenger.candidates[f]["roc_auc"])
    assert challenger.model.family == best


def test_protected_attributes_and_labels_are_not_inputs(challengers: dict[str, Challenger]) -> None:
    model = challengers["churn"].model
    assert "days_to_next_order" not in model.features
    assert not {"customer_id", "as_of_date", "_label"} & set(model.features)
    assert "dominant_review_topic" in model.categorical
    assert {"recency_days", "count_orders", "tenure_days"} <= set(model.numeric)


def test_a_worse_challenger_stays_challenger(
    history: Settings, challengers: dict[str, Challenger]
) -> None:
    strong = challengers["churn"]
    weak_settings = HISTORY_SETTINGS.model_copy(
        update={
            "max_rows_per_cutoff": 120,
            "candidates": ["logistic_regression"],
            "training_cutoffs": 1,
        }
    )
    with warehouse_for(history).connection() as conn:
        weak = train_challenger(conn, HISTORY_END, CHURN, weak_settings)
    assert weak.metrics["roc_auc"] < strong.metrics["roc_auc"]

    promoted, why = champion_decision(weak, strong.model, "roc_auc")
    assert not promoted and "<= champion" in why
    assert weak.champion_metrics is not None
    assert weak.champion_metrics["roc_auc"] > weak.metrics["roc_auc"]

    promoted, why = champion_decision(strong, weak.model, "roc_auc")
    assert promoted and "> champion" in why
    assert champion_decision(strong, None, "roc_auc")[0]
    # a champion of another horizon is replaced whatever it scores
    longer = replace(strong.model, target=Target("churn", 28, "churn_risk"))
    promoted, why = champion_decision(weak, longer, "roc_auc")
    assert promoted and "28-day horizon" in why


def test_a_stored_model_scores_the_same(
    history_copy: Settings, challengers: dict[str, Challenger]
) -> None:
    store = ModelStore(model_dir=str(history_copy.model_dir))
    with warehouse_for(history_copy).connection() as conn:
        for name, model_class in MODEL_CLASSES.items():
            challenger = challengers[name]
            store.save(conn, challenger.model, f"v-{name}", training_end=HISTORY_END)
            loaded = store.load(conn, f"v-{name}", model_class)
            expected = challenger.model.predict(challenger.valid)
            np.testing.assert_array_equal(loaded.predict(challenger.valid), expected)
            assert loaded.target == challenger.model.target
            assert loaded.features == challenger.model.features


@pytest.mark.parametrize("target", ["churn", "purchase"])
def test_models_close_most_of_the_gap_to_the_planted_truth(
    history: Settings, challengers: dict[str, Challenger], target: str
) -> None:
    """The oracle knows every customer's true purchase rate and drop-out probability: it is
    better than any baseline, and the model gets most of the way from the best baseline to
    it."""
    challenger = challengers[target]
    rates = read_rates(history.truth_dir)
    assert rates is not None
    with warehouse_for(history).connection() as conn:
        oracle = oracle_scores(
            conn,
            challenger.valid["customer_id"],
            challenger.plan.validation_cutoff,
            challenger.model.target,
            rates,
        )
    oracle_auc = roc_auc_score(challenger.y_valid, oracle)
    best = max(b["roc_auc"] for b in challenger.baselines.values())
    model = challenger.metrics["roc_auc"]
    assert oracle_auc > best
    assert (model - best) / (oracle_auc - best) > 0.6
