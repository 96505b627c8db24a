"""Point-in-time training sets, the models against the baselines, calibration and the champion
rule, on ten generated weeks."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

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
    measure,
    snapshot_sizes,
    train_challenger,
)
from seg_pipeline.resources import query_frame
from seg_pipeline.settings import Settings
from tests.conftest import warehouse_for
from tests.predictive.conftest import HISTORY_END, HISTORY_SETTINGS, HISTORY_START

CHURN, PURCHASE, RESPONSE, NEXT_ORDER = HISTORY_SETTINGS.targets()
TARGETS = [t.name for t in HISTORY_SETTINGS.targets()]
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
    features = rows.select(stored.columns)  # the rest: customer_clv's figures of C, the label
    assert_frame_equal(
        features,
        stored.filter(pl.col("customer_id").is_in(rows["customer_id"])).select(features.columns),
    )


@pytest.mark.parametrize("target", TARGETS)
def test_each_model_beats_every_baseline_and_is_calibrated(
    challengers: dict[str, Challenger], target: str
) -> None:
    challenger = challengers[target]
    model = challenger.metrics
    baselines = {"recency", "rfm", "bgnbd_prob_alive", "bgnbd_expected_purchases"}
    if target == "response":
        baselines.add("last_response_rate")
    assert set(challenger.baselines) == baselines
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
            "max_rows_per_cutoff": 200,
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


@pytest.mark.parametrize("target", TARGETS)
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
            challenger.valid,
            challenger.plan.validation_cutoff,
            challenger.model.target,
            rates,
        )
    target_of = challenger.model.target
    oracle_auc = measure(
        target_of, challenger.valid, challenger.y_valid, oracle, is_probability=False
    )
    best = max(b["roc_auc"] for b in challenger.baselines.values())
    model = challenger.metrics["roc_auc"]
    assert oracle_auc["roc_auc"] > best
    # Campaign response is rare: one validation week holds about 170 conversions, and the share
    # of the gap closed has a standard error near 0.2 there (0.53, 0.88 and 0.48 measured on
    # three generator versions with the same settings; 0.48 with the planted uplift and sure
    # things of today's generator: model 0.725, recency 0.674, oracle 0.780).
    assert (model - best) / (oracle_auc["roc_auc"] - best) > (0.4 if target == "response" else 0.5)


def test_response_rows_are_sends_after_the_cutoff_labelled_by_their_conversion(
    history_copy: Settings,
) -> None:
    """A response row is a send of the week after the cut-off with the customer's features as
    of the cut-off; its label is the send's conversion; the channel history beside it ends on
    the cut-off. Sends after the window or arriving after the training day change nothing."""
    cutoff = date(2026, 2, 4)
    window_end = cutoff + timedelta(days=RESPONSE.horizon_days)
    with warehouse_for(history_copy).connection() as conn:
        size = snapshot_sizes(conn, HISTORY_END)[cutoff]
        rows = cutoff_rows(conn, cutoff, size, RESPONSE, HISTORY_END, HISTORY_SETTINGS)
        sends = query_frame(
            conn,
            "SELECT campaign_id, customer_id, channel, sent_date, is_converted, arrival_date, "
            "is_control_group, "
            "sent_date <= ? AND arrival_date <= ? AS before "
            "FROM stg_campaign_sends WHERE channel IS NOT NULL "
            "ORDER BY campaign_id, customer_id, arrival_date",
            [cutoff, cutoff],
        )
        conn.execute("DELETE FROM stg_campaign_sends WHERE sent_date > ?", [window_end])
        again = cutoff_rows(conn, cutoff, size, RESPONSE, HISTORY_END, HISTORY_SETTINGS)
    assert_frame_equal(again, rows)
    assert rows["sent_date"].is_between(cutoff + timedelta(days=1), window_end).all()
    assert set(rows["channel"]) <= {"email", "sms", "push"}
    assert (rows["as_of_date"] == cutoff).all()
    assert 0 < rows["_label"].sum() < rows.height / 20  # about one send in a hundred converts
    latest = sends.unique(["campaign_id", "customer_id"], keep="last", maintain_order=True)
    # the campaigns' control groups are in the send log but were never sent: not rows
    assert latest["is_control_group"].any()
    latest = latest.filter(~pl.col("is_control_group"))
    in_window = latest.filter(
        pl.col("sent_date").is_between(cutoff + timedelta(days=1), window_end)
        & pl.col("customer_id").is_in(rows["customer_id"])
    )
    assert rows.height == in_window.height
    assert rows["_label"].sum() == in_window["is_converted"].sum()
    # the last-response-rate baseline counts only the sends of the cut-off and before
    one = rows.row(int(np.argmax(rows["_channel_sends_before"].to_numpy())), named=True)
    history = (
        sends.filter(pl.col("before"))
        .unique(["campaign_id", "customer_id"], keep="last", maintain_order=True)
        .filter(~pl.col("is_control_group"))
    )
    history = history.filter(
        (pl.col("customer_id") == one["customer_id"]) & (pl.col("channel") == one["channel"])
    )
    assert one["_channel_sends_before"] == history.height > 0
    assert one["_channel_conversions_before"] == history["is_converted"].sum()
    # features as of the cut-off: the send's channel and day are not in customer_features
    assert "channel" in rows.columns and "bgnbd_prob_alive" in rows.columns


def test_next_order_curve_rises_with_the_horizon_and_gives_the_expected_date(
    challengers: dict[str, Challenger],
) -> None:
    challenger = challengers["next_order"]
    model, valid = challenger.model, challenger.valid
    assert model.target.conditions == (3, 6, 11, 21)
    assert set(valid["order_within_days"]) == set(model.target.conditions)
    customers = valid.filter(pl.col("order_within_days") == 21)
    curve = model.predict_at(customers, model.target.conditions)
    # the same as each horizon asked on its own
    one = customers.with_columns(pl.lit(11).cast(pl.Int32).alias("order_within_days"))
    np.testing.assert_allclose(curve[:, 2], model.predict(one))
    assert (np.diff(curve, axis=1) >= -1e-9).all()  # P(order by day d) never falls with d
    days = model.expected_days(customers)
    reached = curve[:, -1] >= 0.5
    assert np.isnan(days[~reached]).all() and not np.isnan(days[reached]).any()
    assert ((days[reached] > 0) & (days[reached] <= 21)).all()
    # where the curve crosses one half between two horizons, the date lies between them
    low, high = curve[:, 1] < 0.5, curve[:, 2] >= 0.5
    assert ((days[low & high] > 6) & (days[low & high] <= 11)).all()
    # the expected dates order customers by when they ordered better than their mean gap
    dates = challenger.dates
    assert dates is not None
    assert dates["model"]["concordance"] > dates["average_gap"]["concordance"] + 0.03
    assert dates["model"]["mae_days"] < dates["average_gap"]["mae_days"]


def test_response_probabilities_follow_the_channel(challengers: dict[str, Challenger]) -> None:
    """The generator opens sms 1.4 times as often as e-mail and push 0.7 times: scored on each
    channel, the validation customers' mean response probabilities keep that order."""
    challenger = challengers["response"]
    model = challenger.model
    assert "channel" in model.categorical
    customers = challenger.valid.unique("customer_id", keep="first", maintain_order=True)
    by_channel = model.predict_at(customers, ("email", "sms", "push")).mean(axis=0)
    assert by_channel[1] > by_channel[0] > by_channel[2]
