"""Measured lift: interval coverage on simulated groups, and the lift of a campaign whose
treated customers were given a known number of extra orders."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl

from seg_pipeline.activation.lift import (
    TOO_SMALL,
    LiftConfig,
    campaign_lift_of_day,
    clustered_variance,
    lift_estimate,
    mean_difference,
)
from seg_pipeline.settings import Settings
from tests.conftest import MONTH_END, warehouse_for


def test_the_95_percent_interval_covers_the_true_lift_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(7)
    p0, p1, n1, n0 = 0.12, 0.15, 4000, 1000
    covered = []
    for _ in range(600):
        x1, x0 = int(rng.binomial(n1, p1)), int(rng.binomial(n0, p0))
        est = lift_estimate(n1, x1, n0, x0)
        covered.append(est["absolute_lift_low"] <= p1 - p0 <= est["absolute_lift_high"])
        ratio = p1 / p0 - 1
        assert est["relative_lift_low"] < est["relative_lift"] < est["relative_lift_high"]
        covered.append(est["relative_lift_low"] <= ratio <= est["relative_lift_high"])
    assert 0.92 <= np.mean(covered) <= 0.98


def test_clustered_intervals_cover_when_customers_repeat_across_sends() -> None:
    """Customers stay in their group on every send and differ in how likely they convert:
    intervals clustered by customer cover about 95% of the time, independent ones less."""
    rng = np.random.default_rng(11)
    customers, sends, lift = 1500, 6, 0.03
    covered = {"clustered": [], "independent": []}
    for _ in range(400):
        base = rng.beta(1.0, 4.0, 2 * customers)  # each customer's own conversion rate
        treated = np.arange(2 * customers) < customers
        y = rng.random((2 * customers, sends)) < (base + lift * treated)[:, None]
        per_customer = y.sum(axis=1).astype(float)
        n = np.full(2 * customers, float(sends))
        variances = tuple(
            clustered_variance(
                per_customer[g].sum(),
                n[g].sum(),
                int(g.sum()),
                (per_customer[g] ** 2).sum(),
                (per_customer[g] * n[g]).sum(),
                (n[g] ** 2).sum(),
            )
            for g in (treated, ~treated)
        )
        x1, x0 = int(per_customer[treated].sum()), int(per_customer[~treated].sum())
        n1 = n0 = customers * sends
        for name, var in (("clustered", variances), ("independent", None)):
            est = lift_estimate(n1, x1, n0, x0, variances=var)
            covered[name].append(est["absolute_lift_low"] <= lift <= est["absolute_lift_high"])
    assert 0.92 <= np.mean(covered["clustered"]) <= 0.98
    assert np.mean(covered["independent"]) < 0.9  # 0.87 measured
    # one send a customer: the binomial variance, up to m / (m - 1)
    y = (rng.random(999) < 0.2).astype(float)
    var = clustered_variance(y.sum(), 999.0, 999, (y**2).sum(), y.sum(), 999.0)
    p = y.mean()
    assert np.isclose(var, p * (1 - p) / 998)
    assert clustered_variance(1.0, 1.0, 1, 1.0, 1.0, 1.0) == float("inf")


def test_a_holdout_too_small_gives_no_figures() -> None:
    est = lift_estimate(n_treated=900, x_treated=80, n_holdout=30, x_holdout=3)
    assert est["conclusion"] == TOO_SMALL
    assert "absolute_lift" not in est
    assert est["conversion_rate_holdout"] == 0.1
    assert lift_estimate(900, 80, 100, 12)["conclusion"] == "no detectable lift"
    assert lift_estimate(900, 300, 300, 30)["conclusion"] == "positive lift"


def test_mean_difference_matches_the_welch_interval() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.gamma(2.0, 30.0, 800), rng.gamma(2.0, 25.0, 300)
    diff, low, high = mean_difference(
        a.size, a.sum(), (a * a).sum(), b.size, b.sum(), (b * b).sum()
    )
    se = np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    assert np.isclose(diff, a.mean() - b.mean())
    assert np.isclose(high - low, 2 * 1.959963984540054 * se)


def test_lift_counts_the_orders_of_each_group_in_its_window(activated: Settings) -> None:
    with warehouse_for(activated).connection() as conn:
        lift = conn.sql(
            "select * from campaign_lift where as_of_date = $d", params={"d": MONTH_END}
        ).pl()
        audiences = conn.sql("select * from audiences").pl()
        orders = conn.sql(
            "select customer_id, order_date from stg_orders where order_status <> 'cancelled'"
        ).pl()
    sends = lift.filter(pl.col("scope") == "send_day")
    assert sends.height > 0
    for send_date, window in sends.select("send_date", "measurement_window_days").rows():
        assert send_date + timedelta(days=window - 1) <= MONTH_END
    for row in sends.head(6).iter_rows(named=True):
        chosen = audiences.filter(pl.col("campaign_id") == row["campaign_id"])
        end = row["send_date"] + timedelta(days=row["measurement_window_days"] - 1)
        buyers = set(
            orders.filter(pl.col("order_date").is_between(row["send_date"], end))["customer_id"]
        )
        treated = chosen.filter(~pl.col("is_holdout"))["customer_id"].to_list()
        held = chosen.filter(pl.col("is_holdout"))["customer_id"].to_list()
        assert (row["n_treated"], row["n_holdout"]) == (len(treated), len(held))
        assert row["conversions_treated"] == len(buyers & set(treated))
        assert row["conversions_holdout"] == len(buyers & set(held))
    campaigns = lift.filter(pl.col("scope") == "campaign")
    assert campaigns["n_treated"].sum() == sends["n_treated"].sum()


def test_the_interval_covers_a_planted_effect(activated: Settings, tmp_path: Path) -> None:
    """Extra orders for a random 25% of the treated customers of every send (inside the
    window): the planted lift is 25% of the treated who would not have converted anyway."""
    settings = replace(activated, warehouse_path=tmp_path / "w.duckdb")
    shutil.copy(activated.warehouse_path, settings.warehouse_path)
    rng = np.random.default_rng(11)
    with warehouse_for(settings).connection() as conn:
        before = campaign_lift_of_day(conn, MONTH_END, LiftConfig())
        treated = conn.sql(
            "select campaign_id, playbook_campaign, customer_id, send_date from audiences "
            "where not is_holdout and send_date + measurement_window_days - 1 <= $d",
            params={"d": MONTH_END},
        ).pl()
        conn.register("chosen", treated.filter(pl.Series(rng.random(treated.height) < 0.25)))
        conn.execute(
            "insert into stg_orders by name select 'PLANTED' || row_number() over () as order_id,"
            " 1 as line_number, customer_id, send_date as order_date, send_date as arrival_date,"
            " 'completed' as order_status, 1 as quantity, 10.0 as unit_price,"
            " 0.0 as discount_amount from chosen"
        )
        after = campaign_lift_of_day(conn, MONTH_END, LiftConfig())
    key = ["playbook_campaign", "scope", "campaign_id"]
    both = before.join(after, on=key, suffix="_after", nulls_equal=True)
    ours = ["likely_buyers_email", "top_push"]
    pooled = both.filter((pl.col("scope") == "campaign") & pl.col("playbook_campaign").is_in(ours))
    assert pooled.height == 2
    for row in pooled.iter_rows(named=True):
        # the planted effect on the rate: a quarter of the treated who had not converted
        planted = 0.25 * (1 - row["conversion_rate_treated"])
        measured_without = row["absolute_lift"] or 0.0
        assert row["conclusion_after"] != TOO_SMALL
        assert row["absolute_lift_low_after"] - measured_without <= planted
        assert planted <= row["absolute_lift_high_after"] - measured_without
        assert row["revenue_lift_after"] > row["revenue_lift"]
