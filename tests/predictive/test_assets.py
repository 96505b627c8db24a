"""predictive_models and customer_scores as Dagster assets on the generated month: too little
history for the default horizons but response's, a champion trained and used with short ones,
the same rows on a re-run."""

from __future__ import annotations

import math
from datetime import date

import polars as pl
from dagster import DagsterInstance

from seg_pipeline.definitions import build_definitions
from seg_pipeline.resources import query_frame
from seg_pipeline.settings import Settings
from tests.conftest import MONTH_END, run_range, warehouse_for
from tests.helpers import fingerprint, materializations, metadata_text

REFIT_DAY = date(2026, 1, 26)  # a Monday
SHORT = {
    "predictive_models": {
        "churn_horizon_days": 7,
        "purchase_horizon_days": 5,
        "next_order_horizon_days": 7,
        "cutoff_every_days": 2,
        "min_labels": 30,
    }
}
TARGETS = ["churn", "next_order", "purchase", "response"]


def _table(conn, sql: str, *params) -> pl.DataFrame:
    return query_frame(conn, sql, list(params))


def test_a_month_is_too_short_for_the_default_horizons(loaded_settings: Settings) -> None:
    with warehouse_for(loaded_settings).connection() as conn:
        models = _table(conn, "SELECT * FROM predictive_models ORDER BY as_of_date, target")
        scores = _table(conn, "SELECT * FROM customer_scores WHERE as_of_date = ?", MONTH_END)
        customers = _table(
            conn, "SELECT count(*) AS n FROM customer_features WHERE as_of_date = ?", MONTH_END
        )["n"][0]
    assert models.height == 4 * 31
    others = models.filter(pl.col("target") != "response")
    assert others["champion_version"].null_count() == others.height
    mondays = models.filter(pl.col("decision") != "not a refit day")
    assert sorted(set(mondays["as_of_date"])) == [date(2026, 1, d) for d in (5, 12, 19, 26)]
    for target in ("churn", "purchase", "next_order"):
        decisions = mondays.filter(pl.col("target") == target)["decision"].to_list()
        assert all(
            "no customer_features snapshot on the validation cut-off" in d for d in decisions
        )
    # a response model needs only two weeks, and a week of sends to 1,000 customers holds more
    # than a hundred conversions (clicks on days with an order, caused by the send or not):
    # trained from the third Monday on, compared with its champion on the fourth
    response = models.filter(pl.col("target") == "response")
    decisions = mondays.filter(pl.col("target") == "response")["decision"].to_list()
    assert "min_labels" not in decisions[-2] and decisions[-2].startswith("no champion yet")
    assert " champion " in decisions[-1]
    champion = response.select(pl.col("as_of_date"), pl.col("champion_version").is_not_null())
    assert champion.filter("champion_version")["as_of_date"].min() == date(2026, 1, 19)
    assert champion.filter(pl.col("as_of_date") >= date(2026, 1, 19))["champion_version"].all()
    # every customer is scored each day: no model yet but response's, so the other scores are
    # null, the rest is there
    assert scores.height == customers
    for column in ("churn_risk", "expected_next_order_date"):
        assert scores[column].null_count() == scores.height
    assert scores["response_email"].is_between(0, 1).all()
    assert scores["segment_id"].null_count() == 0
    assert scores["expected_clv"].null_count() < scores.height


def test_a_champion_is_trained_promoted_and_scores_every_customer(
    loaded_settings: Settings,
) -> None:
    defs = build_definitions(loaded_settings)
    assets = ["predictive_models", "customer_scores"]
    result = run_range(defs, REFIT_DAY, MONTH_END, assets=assets, op_config=SHORT)
    with warehouse_for(loaded_settings).connection() as conn:
        models = _table(
            conn,
            "SELECT * FROM predictive_models WHERE as_of_date >= ? ORDER BY as_of_date, target",
            REFIT_DAY,
        )
        scores = _table(conn, "SELECT * FROM customer_scores WHERE as_of_date = ?", MONTH_END)
        registry = _table(conn, "SELECT kind, model_version FROM model_registry ORDER BY kind")
        features_columns = _table(conn, "SELECT * FROM customer_features LIMIT 0").columns
        first = {name: fingerprint(conn, name) for name in assets}

    refit = models.filter(pl.col("as_of_date") == REFIT_DAY)
    assert refit["target"].to_list() == TARGETS
    new = refit.filter(pl.col("target") != "response")
    assert new["promoted"].to_list() == [True] * 3
    assert all(d.startswith("no champion yet") for d in new["decision"])
    # response has had a champion since 2026-01-19 (the default settings): compared with it
    assert " champion " in refit.filter(pl.col("target") == "response")["decision"][0]
    assert refit["validation_cutoff"].to_list() == [date(2026, 1, d) for d in (19, 19, 21, 19)]
    champions = dict(zip(refit["target"], refit["champion_version"], strict=True))
    later = models.filter(pl.col("as_of_date") > REFIT_DAY)
    assert set(later["decision"]) == {"not a refit day"}
    for target, version in champions.items():
        assert set(later.filter(pl.col("target") == target)["champion_version"]) == {version}
    assert registry.filter(pl.col("model_version").is_in(list(champions.values()))).height == 4
    assert set(registry["kind"]) >= set(TARGETS)

    # every customer scored with calibrated probabilities by the champions
    assert scores["churn_risk"].null_count() == 0
    assert scores["churn_risk"].is_between(0, 1).all()
    assert scores["purchase_propensity"].is_between(0, 1).all()
    for target in TARGETS:
        assert set(scores[f"{target}_model_version"]) == {champions[target]}
    for channel in ("email", "sms", "push"):
        assert scores[f"response_{channel}"].is_between(0, 1).all()
    # an expected date within the next-order horizon, or none
    days = scores["expected_days_to_next_order"].drop_nulls()
    assert 0 < days.len() < scores.height and days.is_between(0, 7).all()
    dated = scores.filter(pl.col("expected_next_order_date").is_not_null())
    assert (
        (dated["expected_next_order_date"] - dated["as_of_date"])
        .dt.total_days()
        .is_between(1, 7)
        .all()
    )
    deciles = scores["churn_risk_decile"].value_counts().sort("churn_risk_decile")
    assert deciles["churn_risk_decile"].to_list() == list(range(1, 11))
    assert deciles["count"].max() - deciles["count"].min() <= 1
    # a higher decile never has a lower risk
    by_decile = (
        scores.group_by("churn_risk_decile")
        .agg(pl.col("churn_risk").min().alias("low"), pl.col("churn_risk").max().alias("high"))
        .sort("churn_risk_decile")
    )
    assert (by_decile["low"][1:] >= by_decile["high"][:-1]).all()

    # the riskiest decile has its churn reasons: real inputs that raise the risk
    explained = scores.filter(pl.col("churn_reasons").is_not_null())
    assert explained.height == math.ceil(scores.height * 0.1)
    unexplained = scores.filter(pl.col("churn_reasons").is_null())
    assert explained["churn_risk"].min() >= unexplained["churn_risk"].max()
    inputs = set(features_columns) - {"customer_id", "as_of_date", "age_band", "gender"}
    for reasons in explained["churn_reasons"].to_list():
        assert 1 <= len(reasons) <= 3
        assert {r["feature"] for r in reasons} <= inputs
        impacts = [r["impact"] for r in reasons]
        assert all(i > 0 for i in impacts) and impacts == sorted(impacts, reverse=True)

    meta = materializations(result)
    text = metadata_text(meta["predictive_models"])
    for baseline in ("recency", "rfm", "bgnbd_prob_alive", "bgnbd_expected_purchases"):
        assert baseline in text
    for plot in ("churn_calibration", "churn_importance", "purchase_calibration"):
        assert f"plot_{plot}" in meta["predictive_models"]
    assert "score_distribution" in meta["customer_scores"]
    assert "C0" not in metadata_text(meta["predictive_models"])  # no customer ids

    # on generated data the champions are compared with an oracle that knows the truth
    (check,) = [
        e
        for e in result.get_asset_check_evaluations()
        if e.check_name == "models_against_planted_truth"
    ]
    figures = {k: v.value for k, v in check.metadata.items()}
    for target in TARGETS:
        assert figures[f"{target}_champion"] == champions[target]
        assert 0.5 < figures[f"{target}_model_roc_auc"] <= 1
        assert figures[f"{target}_oracle_roc_auc"] > figures[f"{target}_best_baseline_roc_auc"]

    # a re-run of the window finds the refit day's models in the store: the same rows
    run_range(defs, REFIT_DAY, MONTH_END, assets=assets, op_config=SHORT)
    with warehouse_for(loaded_settings).connection() as conn:
        assert _table(conn, "SELECT count(*) AS n FROM model_registry")["n"][0] == registry.height
        assert {name: fingerprint(conn, name) for name in assets} == first

    # manual rollback: the set_champion job makes a chosen version the champion of a day
    job = defs.resolve_job_def("set_champion")
    earlier = {"set_champion": [champions["purchase"]], **SHORT["predictive_models"]}
    done = job.execute_in_process(
        instance=DagsterInstance.ephemeral(),
        tags={"dagster/partition": MONTH_END.isoformat()},
        run_config={"ops": {"predictive_models": {"config": earlier}}},
    )
    assert done.success
    with warehouse_for(loaded_settings).connection() as conn:
        day = _table(
            conn, "SELECT * FROM predictive_models WHERE as_of_date = ? ORDER BY target", MONTH_END
        )
    purchase = day.filter(pl.col("target") == "purchase").row(0, named=True)
    assert purchase["champion_version"] == champions["purchase"]
    assert purchase["decision"] == f"set by hand (was {champions['purchase']})"
    assert day.filter(pl.col("target") == "churn")["decision"][0].startswith("kept")
    unknown = job.execute_in_process(
        instance=DagsterInstance.ephemeral(),
        tags={"dagster/partition": MONTH_END.isoformat()},
        run_config={"ops": {"predictive_models": {"config": {"set_champion": ["no-such"]}}}},
        raise_on_error=False,
    )
    assert not unknown.success
    assert "'no-such' is not a version of a predictive model" in str(
        unknown.get_step_failure_events()[0].event_specific_data.error
    )
