"""The planted effect of a campaign sent through the activation feed, from the generator's
truth: what a comparison of its treated customers with an untreated (holdout) group should
measure.

The generator's model (seg_pipeline/generator/core.py): while alive, a customer places
k = min(Poisson(lambda), 3) organic orders a day and drops out after them with probability
1 - (1 - p)^k; each order is cancelled with probability c. A send to a customer alive on its
day causes one extra order that day with probability u (the customer's planted uplift on the
send's channel: ``extra_order_p``), cancelled like any order; extra orders change neither the
organic orders nor the drop-out. So, for a treated customer with e = ``extra_order_p``, over the
window [s, s + W) from the send day s:

(b) orders per customer: treated minus untreated = e (orders that were not cancelled:
    e * (1 - c));
(a) P(at least one non-cancelled order in the window): treated minus untreated =
    e * (1 - c) * P(no other non-cancelled order in the window), where the other orders are the
    organic ones and those the customer's other sends in the window cause (each with its own
    uplift while alive, ``activation_customer_sends.parquet``). That probability is exact by a
    two-state recursion over the window's days, starting alive on day s:

        alive_t+1 = alive_t * G_t * E[(c (1 - p))^k]
        dead_t+1  = dead_t + alive_t * G_t * (E[c^k] - E[(c (1 - p))^k])

    with G_t = prod_j (1 - u_j (1 - c)) over the other sends of day t, and
    P(no other) = alive_W + dead_W. Days after the last generated day count organic orders
    only (their sends are not known).

The figures are averages over the campaign's sends (one per customer and day).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
from scipy.stats import poisson

ACTIVATION_FILE = "activation_sends.parquet"
FOLLOWED_FILE = "activation_customer_sends.parquet"
MAX_DAILY_ORDERS = 3  # the generator caps the organic orders of a day


def _power_moment(lam: np.ndarray, x: np.ndarray) -> np.ndarray:
    """E[x^k] for k = min(Poisson(lam), MAX_DAILY_ORDERS)."""
    out = np.zeros_like(lam)
    for k in range(MAX_DAILY_ORDERS):
        out += poisson.pmf(k, lam) * x**k
    return out + poisson.sf(MAX_DAILY_ORDERS - 1, lam) * x**MAX_DAILY_ORDERS


def planted_lift(truth_dir: Path, campaign_id: str, window_days: int) -> dict[str, float | int]:
    """The expected difference between the treated customers of ``campaign_id`` (a campaign
    of the activation feed) treated and untreated, over the ``window_days`` days starting on
    the send day, derived under the generator's model (module docstring).

    Returns
    -------
    dict
        ``sends`` (the campaign's sends), ``alive_at_send`` (share), ``mean_uplift`` (the
        channel uplift while alive, averaged), ``orders_per_customer`` (difference in orders
        placed, cancelled or not), ``non_cancelled_orders_per_customer`` and
        ``p_any_non_cancelled_order`` (difference in the probability of at least one
        non-cancelled order in the window).

    Raises
    ------
    ValueError
        ``window_days`` below 1, or no send of ``campaign_id`` in the truth.
    """
    if window_days < 1:
        raise ValueError("window_days must be at least 1")
    truth = Path(truth_dir)
    sends = pl.read_parquet(truth / ACTIVATION_FILE).filter(pl.col("campaign_id") == campaign_id)
    if sends.is_empty():
        raise ValueError(f"no send of campaign {campaign_id!r} in {truth / ACTIVATION_FILE}")
    sends = sends.with_row_index("_unit")
    # the other sends to these customers in each one's window, per day of the window
    others = (
        pl.read_parquet(truth / FOLLOWED_FILE)
        .join(sends.select("_unit", "customer_id", "cancel_rate", "send_date"), on="customer_id")
        .with_columns((pl.col("send_date") - pl.col("send_date_right")).dt.total_days().alias("t"))
        .filter(
            pl.col("t").is_between(0, window_days - 1)
            & ~((pl.col("campaign_id") == campaign_id) & (pl.col("t") == 0))
        )
        .group_by("_unit", "t")
        .agg((1 - pl.col("uplift") * (1 - pl.col("cancel_rate"))).log().sum().alias("log_g"))
    )
    log_g = np.zeros((sends.height, window_days))
    log_g[others["_unit"].to_numpy(), others["t"].to_numpy()] = others["log_g"].to_numpy()
    lam = sends["lambda"].to_numpy()
    cancel = sends["cancel_rate"].to_numpy()
    stay = 1 - sends["p_dropout"].to_numpy()
    clean_stay = _power_moment(lam, cancel * stay)
    clean = _power_moment(lam, cancel)
    alive = np.ones(sends.height)
    dead = np.zeros(sends.height)
    for t in range(window_days):
        g = np.exp(log_g[:, t])
        dead += alive * g * (clean - clean_stay)
        alive *= g * clean_stay
    e = sends["extra_order_p"].to_numpy()
    kept = e * (1 - cancel)
    return {
        "campaign_id": campaign_id,
        "window_days": window_days,
        "first_send_date": sends["send_date"].min().isoformat(),
        "last_window_day": (sends["send_date"].max() + timedelta(days=window_days - 1)).isoformat(),
        "sends": sends.height,
        "alive_at_send": float(sends["alive_at_send"].mean()),
        "mean_uplift": float(sends["uplift"].mean()),
        "orders_per_customer": float(e.mean()),
        "non_cancelled_orders_per_customer": float(kept.mean()),
        "p_any_non_cancelled_order": float((kept * (alive + dead)).mean()),
    }


def planted_uplift_capture(
    truth_dir: Path,
    send_date: date,
    channel: str,
    rankings: pl.DataFrame,
    top_share: float = 0.3,
) -> dict[str, dict[str, float]]:
    """How much of the planted uplift each ranking puts in its top ``top_share``.

    ``rankings``: ``customer_id`` and one score column per ranking (higher first; nulls
    last), the customers a campaign on ``channel`` sent on ``send_date`` could reach. The
    planted uplift of a send is the truth's channel uplift while the customer is alive on the
    send day (not yet dropped out: drop-outs happen after a day's orders), the expected extra
    orders it causes. An ``oracle`` ranking by it and a ``random`` expectation are added.

    Returns
    -------
    dict
        Per ranking: ``captured`` (share of the customers' total planted uplift in its top
        ``top_share``; random: ``top_share``), ``extra_orders_per_1000_sends`` (mean planted
        uplift of its top share, x 1,000) and ``customers``.

    Raises
    ------
    ValueError
        An unknown channel, or no customer of ``rankings`` in the truth.
    """
    if channel not in ("email", "sms", "push"):
        raise ValueError(f"unknown channel {channel!r}")
    column = "campaign_uplift" if channel == "email" else f"campaign_uplift_{channel}"
    truth = pl.read_parquet(
        Path(truth_dir) / "customers.parquet", columns=["customer_id", column, "dropout_date"]
    )
    alive = pl.col("dropout_date").is_null() | (pl.col("dropout_date") >= send_date)
    joined = rankings.join(
        truth.select("customer_id", pl.when(alive).then(pl.col(column)).otherwise(0.0)),
        on="customer_id",
        how="inner",
    )
    if joined.is_empty():
        raise ValueError("no customer of the rankings is in the truth")
    planted = joined[column].to_numpy()
    total = planted.sum()
    top = max(1, int(np.ceil(top_share * joined.height)))
    scores = {name: joined[name].fill_null(-np.inf).to_numpy() for name in rankings.columns}
    scores.pop("customer_id")
    scores["oracle"] = planted
    out: dict[str, dict[str, float]] = {}
    for name, score in scores.items():
        picked = planted[np.argsort(-score, kind="stable")[:top]]
        out[name] = {
            "captured": round(float(picked.sum() / total), 4) if total > 0 else float("nan"),
            "extra_orders_per_1000_sends": round(1000 * float(picked.mean()), 2),
            "customers": joined.height,
        }
    out["random"] = {
        "captured": top_share,
        "extra_orders_per_1000_sends": round(1000 * float(planted.mean()), 2),
        "customers": joined.height,
    }
    return out
