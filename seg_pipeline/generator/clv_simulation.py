"""Samples from the BG/NBD and Gamma-Gamma generative stories, for testing the CLV models.

``seg_pipeline.features.clv`` fits the models; these functions draw data whose true parameters
are known, so tests can check that the fits recover them and that the closed forms match
simulation. They are development tools, like the rest of the generator, and no production code
uses them.
"""

from __future__ import annotations

import numpy as np
import polars as pl


def simulate_bgnbd(
    n_customers: int,
    T: float | np.ndarray,
    r: float,
    alpha: float,
    a: float,
    b: float,
    seed: int,
    holdout_days: float = 0.0,
) -> pl.DataFrame:
    """Simulate (frequency, recency, T) from the BG/NBD generative story.

    Each customer draws lambda ~ Gamma(r, 1/alpha) and p ~ Beta(a, b), makes a first purchase
    at time 0, then repeat purchases at Poisson(lambda) times until dropping out (probability p
    after each repeat purchase) or reaching ``T + holdout_days``.

    Returns
    -------
    polars.DataFrame
        ``frequency, recency, T`` (calibration up to ``T``) and ``frequency_holdout`` (repeat
        purchases in ``(T, T + holdout_days]``), one row per customer.
    """
    rng = np.random.default_rng(seed)
    horizon = np.broadcast_to(np.asarray(T, float), (n_customers,)).copy()
    end = horizon + holdout_days
    lam = rng.gamma(r, 1.0 / alpha, size=n_customers)
    p = rng.beta(a, b, size=n_customers)
    freq = np.zeros(n_customers, dtype=np.int64)
    hold = np.zeros(n_customers, dtype=np.int64)
    rec = np.zeros(n_customers)
    now = np.zeros(n_customers)
    # the first purchase (time 0) is not followed by a drop-out chance (FHL 2005, eq. 3)
    active = np.ones(n_customers, dtype=bool)
    while active.any():
        idx = np.nonzero(active)[0]
        now[idx] += rng.exponential(1.0 / lam[idx])
        in_time = now[idx] <= end[idx]
        active[idx[~in_time]] = False
        bought = idx[in_time]
        cal = bought[now[bought] <= horizon[bought]]
        freq[cal] += 1
        rec[cal] = now[cal]
        hold[bought[now[bought] > horizon[bought]]] += 1
        active[bought] = rng.random(bought.size) >= p[bought]
    return pl.DataFrame(
        {"frequency": freq, "recency": rec, "T": horizon, "frequency_holdout": hold}
    )


def simulate_gamma_gamma(
    frequency: np.ndarray, p: float, q: float, gamma: float, seed: int
) -> np.ndarray:
    """Mean spend of ``frequency`` purchases per customer under Gamma-Gamma (0 where x = 0)."""
    rng = np.random.default_rng(seed)
    x = np.asarray(frequency, dtype=np.int64)
    nu = rng.gamma(q, 1.0 / gamma, size=x.size)
    # the sum of x Gamma(p, nu) draws is Gamma(p x, nu)
    totals = np.where(x > 0, rng.gamma(np.maximum(p * x, 1e-12), 1.0 / nu), 0.0)
    return np.where(x > 0, totals / np.maximum(x, 1), 0.0)
