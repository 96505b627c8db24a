"""The planted personas show up in the files the way the brief describes."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from seg_pipeline.generator.text import NEGATIVE_WORDS, POSITIVE_WORDS, count_words
from tests.generator.conftest import START
from tests.generator.gen_helpers import load

END = date(2026, 1, 30)


@pytest.fixture(scope="module")
def truth(clean_world) -> pl.DataFrame:
    return pl.read_parquet(clean_world.truth / "customers.parquet")


@pytest.fixture(scope="module")
def orders(clean_world, truth) -> pl.DataFrame:
    df = load(clean_world.landing, "orders", START, END)
    df = df.with_columns(
        pl.col("quantity").cast(pl.Int64),
        pl.col("unit_price").cast(pl.Float64),
        pl.col("discount").cast(pl.Float64),
        pl.col("ordered_at").str.to_datetime("%Y-%m-%dT%H:%M:%S%:z").alias("ts"),
    )
    return df.join(truth.select("customer_id", "persona"), on="customer_id", how="left")


@pytest.fixture(scope="module")
def events(clean_world) -> pl.DataFrame:
    return load(clean_world.landing, "web_events", START, END)


@pytest.fixture(scope="module")
def reviews(clean_world, truth) -> pl.DataFrame:
    df = load(clean_world.landing, "reviews", START, END).with_columns(
        pl.col("rating").cast(pl.Int64)
    )
    return df.join(truth.select("customer_id", "persona"), on="customer_id", how="left")


def _per_customer(truth: pl.DataFrame, counts: pl.DataFrame, name: str) -> pl.DataFrame:
    return (
        truth.filter(pl.col("signup_date") < START)
        .join(counts, on="customer_id", how="left")
        .with_columns(pl.col(name).fill_null(0))
        .group_by("persona")
        .agg(pl.col(name).mean())
    )


def test_loyal_order_more_and_spend_more_than_one_off(truth, orders) -> None:
    n = orders.group_by("customer_id").agg(pl.col("order_id").n_unique().alias("n"))
    per = dict(_per_customer(truth, n, "n").iter_rows())
    assert per["loyal_high_value"] > 2 * per["one_off"]
    assert per["loyal_high_value"] > 5 * per["browser"]
    value = (
        orders.with_columns(
            (pl.col("quantity") * pl.col("unit_price") - pl.col("discount")).alias("v")
        )
        .group_by("order_id", "persona")
        .agg(pl.col("v").sum())
        .group_by("persona")
        .agg(pl.col("v").mean())
    )
    v = dict(value.iter_rows())
    assert v["loyal_high_value"] > 1.3 * v["one_off"]
    assert v["loyal_high_value"] > 1.5 * v["bargain_hunter"]


def test_one_off_customers_stop_after_ordering(truth) -> None:
    buyers = truth.filter(pl.col("n_orders") > 0)
    dead = dict(buyers.group_by("persona").agg((~pl.col("alive_at_end")).mean()).iter_rows())
    assert dead["one_off"] > 0.6
    assert dead["loyal_high_value"] < 0.2
    assert dead["lapsing"] > 2 * dead["loyal_high_value"]
    alive = truth.filter(pl.col("alive_at_end"))
    assert alive["dropout_date"].null_count() == alive.height
    assert truth.filter(~pl.col("alive_at_end"))["dropout_date"].null_count() == 0


def test_bargain_hunters_use_discounts(orders) -> None:
    share = dict(
        orders.group_by("order_id", "persona")
        .agg((pl.col("discount") > 0).any().alias("d"))
        .group_by("persona")
        .agg(pl.col("d").mean())
        .iter_rows()
    )
    assert share["bargain_hunter"] > 2 * share["loyal_high_value"]


def test_browsers_browse_a_lot_per_order(truth, orders, events) -> None:
    s = (
        events.filter(pl.col("customer_id").is_not_null())
        .group_by("customer_id")
        .agg(pl.col("session_id").n_unique().alias("sessions"))
    )
    o = orders.group_by("customer_id").agg(pl.col("order_id").n_unique().alias("orders"))
    per = (
        truth.filter(pl.col("signup_date") < START)
        .join(s, on="customer_id", how="left")
        .join(o, on="customer_id", how="left")
        .fill_null(0)
        .group_by("persona")
        .agg(pl.col("sessions").sum() / pl.col("orders").sum().clip(1))
    )
    ratio = dict(per.iter_rows())
    for other in ("loyal_high_value", "bargain_hunter", "new_customer"):
        assert ratio["browser"] > 3 * ratio[other]


def test_sessions_and_checkouts(orders, events) -> None:
    sessions = events.group_by("session_id").agg(
        pl.col("customer_id").first(),
        pl.col("anonymous_id").first(),
        (pl.col("event_type") == "checkout").any().alias("checkout"),
        pl.col("event_type").last().alias("last"),
        pl.col("file_day").first(),
    )
    anon = sessions.filter(pl.col("customer_id").is_null())
    assert 0.2 < anon.height / sessions.height < 0.4
    assert anon["anonymous_id"].null_count() == 0
    # checkout is always the last event of its session
    assert (sessions.filter(pl.col("checkout"))["last"] == "checkout").all()
    # most web/app orders come with a checkout session of the same customer that day
    online = (
        orders.filter(pl.col("channel").is_in(["web", "app"]))
        .group_by("order_id")
        .agg(pl.col("customer_id").first(), pl.col("file_day").first())
    )
    checked = sessions.filter(pl.col("checkout")).select("customer_id", "file_day").unique()
    hit = online.join(checked, on=["customer_id", "file_day"], how="semi").height
    assert hit / online.height > 0.8
    assert sessions.filter(pl.col("checkout")).height <= online.height


def test_reviews_follow_experience(reviews, orders) -> None:
    assert reviews.height > 100
    mean = dict(reviews.group_by("persona").agg(pl.col("rating").mean()).iter_rows())
    assert mean["lapsing"] < mean["loyal_high_value"] - 0.8
    texts = reviews.with_columns(
        pl.col("review_text")
        .map_elements(lambda t: count_words(t, NEGATIVE_WORDS), pl.Int64)
        .alias("neg"),
        pl.col("review_text")
        .map_elements(lambda t: count_words(t, POSITIVE_WORDS), pl.Int64)
        .alias("pos"),
    )
    by_p = {
        r["persona"]: r
        for r in texts.group_by("persona")
        .agg("neg", "pos")
        .select("persona", pl.col("neg").list.mean(), pl.col("pos").list.mean())
        .to_dicts()
    }
    assert by_p["lapsing"]["neg"] > 2 * by_p["loyal_high_value"]["neg"]
    assert by_p["loyal_high_value"]["pos"] > by_p["lapsing"]["pos"]
    low = texts.filter(pl.col("rating") <= 2)
    high = texts.filter(pl.col("rating") >= 4)
    assert low["neg"].mean() > 1.0 > high["neg"].mean() + 0.5
    assert high["pos"].mean() > low["pos"].mean() + 0.5
    # every review is about a product its author bought earlier (and did not cancel)
    bought = orders.filter(pl.col("status") != "cancelled").select(
        "customer_id", "product_id", pl.col("file_day").alias("bought")
    )
    j = reviews.join(bought, on=["customer_id", "product_id"], how="left")
    ok = j.group_by("review_id").agg((pl.col("bought") < pl.col("file_day")).any())
    assert ok["bought"].all()
    n_sentences = reviews["review_text"].str.count_matches(r"[.!?](\s|$)")
    assert n_sentences.min() >= 1 and n_sentences.max() <= 4


def test_campaign_funnel(clean_world, truth) -> None:
    sends = load(clean_world.landing, "campaign_sends", START, END)
    assert sends["campaign_id"].n_unique() >= 8  # a couple a week
    assert not (sends["clicked"] & ~sends["opened"]).any()
    assert not (sends["converted"] & ~sends["clicked"]).any()
    consent = truth.filter(pl.col("marketing_consent"))["customer_id"]
    # consent can be withdrawn later in the month, so almost all (not all) sends had consent
    assert sends["customer_id"].is_in(consent.implode()).mean() > 0.97
    rate = dict(
        sends.join(truth.select("customer_id", "persona"), on="customer_id")
        .group_by("persona")
        .agg(pl.col("opened").mean())
        .iter_rows()
    )
    assert rate["loyal_high_value"] > 2 * rate["one_off"]


def test_personas_overlap(truth) -> None:
    """Each parameter leaves some personas overlapping: customers of one persona fall inside
    the middle half of another's range.  (Whether the *observed* features give the personas
    away is measured by the segmentation's evaluation: tests/segmentation/test_evaluation.py.)"""

    def inside_middle_half(a: str, b: str, param: str) -> float:
        x = truth.filter(pl.col("persona") == a)[param]
        ref = truth.filter(pl.col("persona") == b)[param]
        return float(x.is_between(ref.quantile(0.25), ref.quantile(0.75)).mean())

    assert inside_middle_half("new_customer", "bargain_hunter", "lambda") > 0.1
    assert inside_middle_half("one_off", "browser", "spend_mean") > 0.2
    assert inside_middle_half("loyal_high_value", "bargain_hunter", "session_rate") > 0.2
    assert inside_middle_half("lapsing", "browser", "discount_propensity") > 0.2


def test_crm_cdc(clean_world) -> None:
    crm = load(clean_world.landing, "crm_customers", START, END)
    later = crm.filter(pl.col("file_day") > START)
    new = later.filter(pl.col("signup_date") == pl.col("file_day").cast(pl.String))
    changed = later.filter(pl.col("signup_date") != pl.col("file_day").cast(pl.String))
    assert 29 * 3 <= new["customer_id"].n_unique() <= 29 * 12  # 0.1-0.3% a day
    assert changed.height > 29 * 3
    assert (later["updated_at"].str.slice(0, 10) == later["file_day"].cast(pl.String)).all()
    twice = later.group_by("file_day", "customer_id").agg(pl.len()).filter(pl.col("len") > 1)
    assert twice.height > 0  # two versions of a customer on one day
    first = crm.filter(pl.col("file_day") == START).select("customer_id", "updated_at")
    j = changed.join(first, on="customer_id", suffix="_0")
    assert (j["updated_at"] > j["updated_at_0"]).all()
