"""BG/NBD and Gamma-Gamma: parameter recovery on simulated data, closed forms vs simulation."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from seg_pipeline.features.clv import (
    BetaGeoModel,
    CLVParams,
    GammaGammaModel,
    customer_lifetime_value,
    score_customers,
    summary_from_transactions,
)
from seg_pipeline.generator.clv_simulation import simulate_bgnbd, simulate_gamma_gamma

TRUE_BG = {"r": 2.0, "alpha": 40.0, "a": 1.5, "b": 10.0}
TRUE_GG = {"p": 6.0, "q": 4.0, "gamma": 15.0}
# Stated tolerance: with 5,000 customers over 180 days each parameter is recovered within 20%.
TOLERANCE = 0.20


@pytest.fixture(scope="module")
def simulated() -> pl.DataFrame:
    return simulate_bgnbd(5000, 180.0, **TRUE_BG, seed=1)


def test_bgnbd_recovers_the_simulated_parameters(simulated: pl.DataFrame) -> None:
    model = BetaGeoModel().fit(
        simulated["frequency"].to_numpy(), simulated["recency"].to_numpy(), simulated["T"]
    )
    assert model.converged_
    for name, true in TRUE_BG.items():
        assert model.params_[name] == pytest.approx(true, rel=TOLERANCE), name
    # the true parameters fit worse than (or as well as) the estimate
    truth = BetaGeoModel.log_likelihood(
        tuple(TRUE_BG.values()), simulated["frequency"], simulated["recency"], simulated["T"]
    ).sum()
    assert model.log_likelihood_ >= truth - 1e-6


def test_expected_purchases_match_simulation() -> None:
    model = BetaGeoModel()
    model.params_ = dict(TRUE_BG)
    for horizon in (30.0, 180.0, 365.0):
        sim = simulate_bgnbd(20000, horizon, **TRUE_BG, seed=int(horizon))
        observed = sim["frequency"].mean()
        assert float(model.expected_purchases(horizon)) == pytest.approx(observed, rel=0.03)


def test_conditional_expectation_matches_simulation() -> None:
    """Customers simulated to T + t: the conditional expectation at T of the repeat purchases
    in (T, T + t], averaged over customers, equals the simulated mean over (T, T + t]."""
    model = BetaGeoModel()
    model.params_ = dict(TRUE_BG)
    t_cal, t_hold = 120.0, 60.0
    cal = simulate_bgnbd(20000, t_cal, **TRUE_BG, seed=5, holdout_days=t_hold)
    expected = model.conditional_expected_purchases(
        t_hold, cal["frequency"].to_numpy(), cal["recency"].to_numpy(), cal["T"].to_numpy()
    )
    holdout = cal["frequency_holdout"].to_numpy()
    assert expected.mean() == pytest.approx(holdout.mean(), rel=0.05)
    # and it ranks customers: high expectation, more holdout purchases
    top = expected > np.quantile(expected, 0.8)
    assert holdout[top].mean() > 2 * holdout[~top].mean()


def test_probability_alive_is_one_without_repeats_and_falls_with_inactivity() -> None:
    model = BetaGeoModel()
    model.params_ = dict(TRUE_BG)
    p = model.probability_alive(np.array([0, 5, 5]), np.array([0, 170, 20]), np.full(3, 180))
    assert p[0] == 1.0
    assert 0.8 < p[1] <= 1.0 and p[2] < 0.5


def test_gamma_gamma_recovers_the_simulated_parameters(simulated: pl.DataFrame) -> None:
    x = simulated["frequency"].to_numpy()
    monetary = simulate_gamma_gamma(x, **TRUE_GG, seed=2)
    model = GammaGammaModel().fit(x, monetary)
    assert model.converged_
    for name, true in TRUE_GG.items():
        assert model.params_[name] == pytest.approx(true, rel=TOLERANCE), name
    expected = model.conditional_expected_average_value(np.array([0, 50]), np.array([0, 80.0]))
    population_mean = TRUE_GG["p"] * TRUE_GG["gamma"] / (TRUE_GG["q"] - 1)
    assert expected[0] == pytest.approx(population_mean, rel=TOLERANCE)
    assert abs(expected[1] - 80.0) < abs(expected[0] - 80.0)  # many purchases: own mean


def test_summary_from_a_tiny_transaction_log() -> None:
    log = pl.DataFrame(
        {
            "customer_id": ["a", "a", "a", "a", "b", "c"],
            "date": [date(2025, 1, 1), date(2025, 1, 1), date(2025, 1, 11), date(2025, 1, 31),
                     date(2025, 1, 21), date(2025, 2, 5)],
            "amount": [10.0, 5.0, 20.0, 40.0, 7.0, 99.0],
        }
    )  # fmt: skip
    out = summary_from_transactions(log, date(2025, 1, 31))
    assert out["customer_id"].to_list() == ["a", "b"]  # c buys after the end
    a, b = out.rows(named=True)
    assert (a["frequency"], a["recency"], a["T"], a["monetary_value"]) == (2, 30, 30, 30.0)
    assert (b["frequency"], b["recency"], b["T"], b["monetary_value"]) == (0, 0, 10, 0.0)


def test_clv_discounting_and_scores() -> None:
    params = CLVParams(**TRUE_BG, **TRUE_GG)
    summary = pl.DataFrame(
        {"frequency": [3, 3], "recency": [100.0, 10.0], "T": [120.0, 120.0],
         "monetary_value": [50.0, 50.0]}
    )  # fmt: skip
    scored = score_customers(summary, params, horizon_days=365, annual_discount_rate=0.1)
    assert (scored["prob_alive"][0] > scored["prob_alive"][1]) and (scored["clv"] > 0).all()
    e30, e90, e365 = (scored[f"expected_purchases_{d}d"][0] for d in (30, 90, 365))
    assert 0 < e30 < e90 < e365
    bg, _ = params.models()
    x, t_x, big_t = (summary[c].to_numpy() for c in ("frequency", "recency", "T"))
    value = np.array([60.0, 60.0])
    undiscounted = customer_lifetime_value(bg, value, x, t_x, big_t, 365, 0.0)
    assert undiscounted == pytest.approx(bg.conditional_expected_purchases(365, x, t_x, big_t) * 60)
    assert (customer_lifetime_value(bg, value, x, t_x, big_t, 365, 0.1) < undiscounted).all()
