"""The planted campaign uplift: who a send persuades differs from who converts."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import polars as pl
import pytest

from tests.generator.conftest import START
from tests.generator.gen_helpers import load

END = date(2026, 1, 30)
UPLIFT_OF = {
    "email": "campaign_uplift",
    "sms": "campaign_uplift_sms",
    "push": "campaign_uplift_push",
}


@pytest.fixture(scope="module")
def truth(clean_world) -> pl.DataFrame:
    return pl.read_parquet(clean_world.truth / "customers.parquet")


@pytest.fixture(scope="module")
def sends(clean_world, truth) -> pl.DataFrame:
    """Every send with its customer's truth, whether the customer was alive that day, the
    planted uplift of its channel and the probability the generator converts it with."""
    params = json.loads((clean_world.truth / "params.json").read_text())["campaign_funnel"]
    factor = params["channel_open_factor"]
    df = load(clean_world.landing, "campaign_sends", START, END)
    if "control_group" in df.columns:
        df = df.filter(~pl.col("control_group"))
    df = df.with_columns(pl.col("sent_at").dt.date().alias("day")).join(truth, on="customer_id")
    alive = pl.col("dropout_date").is_null() | (pl.col("dropout_date") >= pl.col("day"))
    opens = (pl.col("campaign_open_p") * pl.col("channel").replace_strict(factor)).clip(
        upper_bound=params["max_open_p"]
    )
    uplift = pl.coalesce(
        pl.when(pl.col("channel") == channel).then(pl.col(column))
        for channel, column in UPLIFT_OF.items()
    )
    return df.with_columns(
        alive.alias("alive"),
        uplift.alias("uplift"),
        (
            alive.cast(pl.Float64)
            * opens
            * pl.col("campaign_click_p")
            * (1 - (1 - pl.col("campaign_persuade_p")) * (-pl.col("lambda")).exp())
        ).alias("p_converted"),
    )


def test_uplift_columns_follow_the_funnel(clean_world, truth) -> None:
    params = json.loads((clean_world.truth / "params.json").read_text())["campaign_funnel"]
    for channel, column in UPLIFT_OF.items():
        opens = np.minimum(
            truth["campaign_open_p"].to_numpy() * params["channel_open_factor"][channel],
            params["max_open_p"],
        )
        expected = opens * truth["campaign_click_p"] * truth["campaign_persuade_p"]
        np.testing.assert_allclose(truth[column].to_numpy(), expected.to_numpy())
    assert (truth["campaign_uplift_sms"] >= truth["campaign_uplift"]).all()
    assert (truth["campaign_uplift_push"] <= truth["campaign_uplift"]).all()
    assert truth["campaign_persuade_p"].is_between(0, params["persuade_p"]["max_p"]).all()


def test_uplift_is_a_few_percent_and_depends_on_persona_and_behaviour(sends, truth) -> None:
    per_send = sends.filter("alive")["uplift"].mean()
    assert 0.01 < per_send < 0.05
    by_persona = dict(truth.group_by("persona").agg(pl.col("campaign_uplift").mean()).iter_rows())
    # discount-prone bargain hunters are persuaded most, frequent loyal buyers least
    assert by_persona["bargain_hunter"] > 4 * by_persona["loyal_high_value"]
    assert by_persona["lapsing"] > 2 * by_persona["loyal_high_value"]
    # within a persona, the more often a customer buys anyway, the less a click persuades
    # (the loyal customers' own draw around a small mean varies too much to show it)
    for persona in ("bargain_hunter", "new_customer", "lapsing"):
        p = truth.filter(pl.col("persona") == persona)
        assert p.select(pl.corr("lambda", "campaign_persuade_p", method="spearman")).item() < -0.2
        rho = pl.corr("discount_propensity", "campaign_persuade_p", method="spearman")
        assert p.select(rho).item() > 0.05


def test_conversions_count_sure_things(sends) -> None:
    """The platform's conversion flag is a click followed by any order that day: it happens as
    often as the planted model says, and for frequent buyers far more often than the send
    causes an order."""
    assert not (sends["converted"] & ~sends["clicked"]).any()
    assert not (sends["converted"] & ~sends["alive"]).any()
    observed, expected = sends["converted"].sum(), sends["p_converted"].sum()
    # a Poisson-binomial count: within four standard deviations of its expectation
    sd = float(np.sqrt((sends["p_converted"] * (1 - sends["p_converted"])).sum()))
    assert abs(observed - expected) < 4 * sd
    loyal = sends.filter(pl.col("persona") == "loyal_high_value")
    assert loyal["converted"].mean() > 4 * loyal["uplift"].mean()
    # sure things are a real share of all conversions
    sure_share = 1 - sends.select((pl.col("uplift") * pl.col("alive")).sum()).item() / expected
    assert 0.2 < sure_share < 0.8


def test_targeting_by_response_is_not_targeting_by_uplift(truth) -> None:
    """Ranked by the true conversion probability, the top fifth of alive customers yields
    clearly fewer extra orders per send than the top fifth ranked by the true uplift."""
    alive = truth.filter("alive_at_end").with_columns(
        (
            pl.col("campaign_open_p").clip(upper_bound=0.95)
            * pl.col("campaign_click_p")
            * (1 - (1 - pl.col("campaign_persuade_p")) * (-pl.col("lambda")).exp())
        ).alias("p_converted")
    )
    top = alive.height // 5
    by_response = alive.sort("p_converted", descending=True).head(top)["campaign_uplift"].mean()
    by_uplift = alive.sort("campaign_uplift", descending=True).head(top)["campaign_uplift"].mean()
    assert by_uplift > 1.2 * by_response
    rho = alive.select(pl.corr("campaign_uplift", "p_converted", method="spearman")).item()
    assert 0.2 < rho < 0.8
