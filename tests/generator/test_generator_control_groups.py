"""Random control groups of the generated campaigns: recorded, never sent, and the difference
in orders between the customers sent and those held out is the planted uplift."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tests.generator.conftest import START, make_world
from tests.generator.gen_helpers import load

END = date(2026, 1, 30)


@pytest.fixture(scope="module")
def sends(clean_world) -> pl.DataFrame:
    return load(clean_world.landing, "campaign_sends", START, END)


def test_control_rows_are_held_out_at_the_configured_share(clean_world, sends) -> None:
    share = clean_world.config.holdout_share
    assert share == 0.2
    control = sends["control_group"]
    n = sends.height
    assert abs(control.sum() - share * n) < 4 * np.sqrt(n * share * (1 - share))
    per_campaign = sends.group_by("campaign_id").agg(
        pl.col("control_group").mean().alias("share"),
        pl.len(),
        pl.col("channel").n_unique().alias("channels"),
        (pl.col("sent_at").dt.date() == pl.col("file_day")).all().alias("on_the_day"),
    )
    assert per_campaign["share"].is_between(0.1, 0.3).all()
    # a control row carries its campaign's channel and the day it would have been sent
    assert (per_campaign["channels"] == 1).all() and per_campaign["on_the_day"].all()
    held = sends.filter("control_group")
    assert not (held["opened"] | held["clicked"] | held["converted"]).any()
    sent = sends.filter(~pl.col("control_group"))
    assert sent["opened"].mean() > 0.1 and sent["converted"].sum() > 0
    truth = pl.read_parquet(clean_world.truth / "campaigns.parquet")
    counts = sends.group_by("campaign_id").agg(
        pl.len().alias("rows"), pl.col("control_group").sum().alias("held")
    )
    joined = truth.join(counts, on="campaign_id", how="full", coalesce=True)
    assert joined.height == truth.height == counts.height
    assert (joined["selected"] == joined["rows"]).all()
    assert (joined["control"] == joined["held"]).all()
    assert (joined["sent"] + joined["control"] == joined["selected"]).all()


def test_the_holdout_share_changes_only_who_is_sent(tmp_path: Path) -> None:
    """The control group has a random stream of its own: without one, every campaign selects
    the same customers at the same times and the customers sent do the same with the message."""
    kw = {"end_date": date(2026, 1, 8), "n_customers": 600, "seed": 9, "messiness": 0.0}
    with_holdout = make_world(tmp_path / "a", holdout_share=0.3, **kw)
    without = make_world(tmp_path / "b", holdout_share=0.0, **kw)
    a = load(with_holdout.landing, "campaign_sends", START, date(2026, 1, 8))
    b = load(without.landing, "campaign_sends", START, date(2026, 1, 8))
    assert not b["control_group"].any() and a["control_group"].mean() > 0.2
    key = ["campaign_id", "customer_id"]
    assert a.select(*key, "sent_at", "channel").equals(b.select(*key, "sent_at", "channel"))
    flags = ["opened", "clicked", "converted"]
    sent = a.filter(~pl.col("control_group")).select(*key, *flags)
    assert sent.equals(b.join(sent.select(key), on=key, how="semi").select(*key, *flags))
    # who drops out when does not depend on campaigns either
    ta = pl.read_parquet(with_holdout.truth / "customers.parquet")
    tb = pl.read_parquet(without.truth / "customers.parquet")
    assert ta["dropout_date"].equals(tb["dropout_date"])
    assert ta["n_orders"].sum() < tb["n_orders"].sum()  # fewer sends, fewer extra orders


def test_sent_minus_held_out_orders_measure_the_planted_uplift(clean_world, sends) -> None:
    """Orders on the send day of the customers a campaign sent minus those it held out: the
    planted effect (the mean uplift of the customers sent, alive or not) lies in the 99%
    interval of the measured difference, and the difference is clearly above zero."""
    orders = load(clean_world.landing, "orders", START, END)
    per_day = orders.group_by("customer_id", "file_day").agg(
        pl.col("order_id").n_unique().alias("orders")
    )
    rows = sends.join(per_day, on=["customer_id", "file_day"], how="left").with_columns(
        pl.col("orders").fill_null(0).cast(pl.Float64)
    )
    stats = rows.group_by("control_group").agg(
        pl.col("orders").mean().alias("mean"), pl.col("orders").var().alias("var"), pl.len()
    )
    g = {r["control_group"]: r for r in stats.to_dicts()}
    diff = g[False]["mean"] - g[True]["mean"]
    se = np.sqrt(g[False]["var"] / g[False]["len"] + g[True]["var"] / g[True]["len"])
    truth = pl.read_parquet(clean_world.truth / "campaigns.parquet")
    planted = truth["expected_extra_orders_sent"].sum() / truth["sent"].sum()
    assert abs(diff - planted) < 2.58 * se
    assert diff > 3 * se
    # the control groups would have had the same effect on average
    held = truth.select(
        (pl.col("mean_uplift_control") * pl.col("control")).sum() / pl.col("control").sum()
    ).item()
    assert held == pytest.approx(planted, rel=0.25)
