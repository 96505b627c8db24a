"""Customer lifetime value: BG/NBD purchase model and Gamma-Gamma spend model.

BG/NBD (Fader, Hardie and Lee, 2005, "Counting your customers the easy way") models repeat
purchases as a Poisson process with a Gamma(r, alpha) heterogeneous rate, where after each
purchase the customer drops out with a Beta(a, b) heterogeneous probability. Gamma-Gamma (Fader,
Hardie and Lee, 2005, "RFM and CLV") models the average value of a customer's repeat purchases.
Both are fitted by maximum likelihood (scipy) on summaries per customer:

- ``frequency`` x: number of repeat purchase days (purchase days minus one)
- ``recency`` t_x: days between the first and the last purchase day
- ``T``: days between the first purchase day and the end of calibration
- ``monetary_value``: mean spend of the repeat purchase days (0 without repeat purchases)

Time is in days throughout. The estimators follow scikit-learn's shape: parameters only in
``__init__``, ``fit`` returns ``self``, fitted values end with ``_``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any, ClassVar, Self

import numpy as np
import polars as pl
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, hyp2f1

# Every (scaled) parameter is kept in [1e-4, 1e4]: on short histories the drop-out process is
# barely identified and the unbounded optimum runs off to a -> 0, b -> infinity, where the
# hypergeometric terms lose all precision.
LOG_BOUND = 9.2


def _aggregate(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Unique rows of the given columns and how often each occurs (fits scale with distinct
    histories, not customers)."""
    stacked = np.column_stack(columns)
    unique, counts = np.unique(stacked, axis=0, return_counts=True)
    return [unique[:, i] for i in range(unique.shape[1])], counts.astype(float)


class BetaGeoModel:
    """BG/NBD model of repeat purchases, fitted by maximum likelihood.

    Parameters
    ----------
    penalizer
        L2 penalty on the log-parameters (0 = plain maximum likelihood).
    max_iter
        Iteration limit of the optimiser.

    Attributes
    ----------
    params_ : dict
        Fitted ``r``, ``alpha``, ``a``, ``b``.
    log_likelihood_ : float
        Total log-likelihood at the optimum.
    n_customers_ : int
        Customers used in the fit.
    converged_ : bool
        Whether the optimiser reported success.
    """

    def __init__(self, penalizer: float = 0.0, max_iter: int = 2000) -> None:
        self.penalizer = penalizer
        self.max_iter = max_iter

    @staticmethod
    def log_likelihood(
        params: tuple[float, float, float, float],
        frequency: np.ndarray,
        recency: np.ndarray,
        T: np.ndarray,
    ) -> np.ndarray:
        """Log-likelihood of each customer's (x, t_x, T) under ``(r, alpha, a, b)`` (FHL eq. 6)."""
        r, alpha, a, b = params
        x = np.asarray(frequency, dtype=float)
        t_x = np.asarray(recency, dtype=float)
        T = np.asarray(T, dtype=float)
        a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        a2 = betaln(a, b + x) - betaln(a, b)
        a3 = -(r + x) * np.log(alpha + T)
        with np.errstate(divide="ignore", invalid="ignore"):
            a4 = np.where(
                x > 0,
                np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + t_x),
                -np.inf,
            )
        return a1 + a2 + np.logaddexp(a3, a4)

    def fit(
        self,
        frequency: np.ndarray,
        recency: np.ndarray,
        T: np.ndarray,
        initial: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0),
    ) -> BetaGeoModel:
        """Fit ``r, alpha, a, b`` by maximising the log-likelihood over log-parameters.

        Parameters
        ----------
        frequency, recency, T
            Per-customer summaries (days); every customer has made at least one purchase.
        initial
            Starting values of ``(r, alpha, a, b)``.

        Returns
        -------
        BetaGeoModel
            ``self``, fitted.
        """
        (x, t_x, big_t), weights = _aggregate(
            np.asarray(frequency, float), np.asarray(recency, float), np.asarray(T, float)
        )
        if x.size == 0:
            raise ValueError("no customers to fit")
        scale = max(float(np.max(big_t)), 1.0)

        def objective(log_params: np.ndarray) -> float:
            r, alpha, a, b = np.exp(log_params)
            ll = self.log_likelihood((r, alpha * scale, a, b), x, t_x, big_t)
            penalty = self.penalizer * float(np.sum(log_params**2))
            value = -float(np.sum(weights * ll)) / weights.sum() + penalty
            return value if np.isfinite(value) else 1e10

        start = np.log(np.array(initial, float) / np.array([1.0, scale, 1.0, 1.0]))
        bounds = [(-LOG_BOUND, LOG_BOUND)] * 4
        result = minimize(
            objective, start, method="Nelder-Mead", bounds=bounds,
            options={"maxiter": self.max_iter, "xatol": 1e-7, "fatol": 1e-10},
        )  # fmt: skip
        result = minimize(objective, result.x, method="L-BFGS-B", bounds=bounds)
        r, alpha, a, b = np.exp(result.x)
        self.params_ = {"r": float(r), "alpha": float(alpha * scale), "a": float(a), "b": float(b)}
        self.log_likelihood_ = float(
            np.sum(weights * self.log_likelihood(self._p(), x, t_x, big_t))
        )
        self.n_customers_ = int(weights.sum())
        self.converged_ = bool(result.success)
        return self

    def _p(self) -> tuple[float, float, float, float]:
        p = self.params_
        return p["r"], p["alpha"], p["a"], p["b"]

    def expected_purchases(self, t: np.ndarray | float) -> np.ndarray:
        """Expected purchases of a new customer in (0, t] (FHL eq. 9), unconditional."""
        r, alpha, a, b = self._p()
        t = np.asarray(t, dtype=float)
        z = t / (alpha + t)
        return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, z))

    def probability_alive(
        self, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray
    ) -> np.ndarray:
        """P(still active at T | x, t_x, T) (FHL 2008 note, eq. 1)."""
        r, alpha, a, b = self._p()
        x = np.asarray(frequency, float)
        t_x = np.asarray(recency, float)
        T = np.asarray(T, float)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            log_ratio = (
                np.log(a) - np.log(np.maximum(b + x - 1, 1e-300))
                + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
            )  # fmt: skip
            odds = np.where(x > 0, np.exp(log_ratio), 0.0)
        return 1.0 / (1.0 + odds)

    def conditional_expected_purchases(
        self, t: float, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray
    ) -> np.ndarray:
        """Expected purchases in (T, T + t] given the history (x, t_x, T) (FHL eq. 10)."""
        r, alpha, a, b = self._p()
        x = np.asarray(frequency, float)
        T = np.asarray(T, float)
        z = t / (alpha + T + t)
        with np.errstate(over="ignore", invalid="ignore"):
            head = (a + b + x - 1) / (a - 1)
            tail = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(
                r + x, b + x, a + b + x - 1, z
            )
        return head * tail * self.probability_alive(frequency, recency, T)


class GammaGammaModel:
    """Gamma-Gamma model of the mean value of repeat purchases, fitted by maximum likelihood.

    Parameters
    ----------
    penalizer
        L2 penalty on the log-parameters.

    Attributes
    ----------
    params_ : dict
        Fitted ``p``, ``q``, ``gamma``.
    log_likelihood_ : float
    n_customers_ : int
        Customers with at least one repeat purchase used in the fit.
    converged_ : bool
    """

    def __init__(self, penalizer: float = 0.0) -> None:
        self.penalizer = penalizer

    @staticmethod
    def log_likelihood(
        params: tuple[float, float, float], frequency: np.ndarray, monetary: np.ndarray
    ) -> np.ndarray:
        """Log-likelihood of each customer's mean spend ``monetary`` over ``frequency``
        purchases (FHL 2005 "RFM and CLV", eq. 2 integrated over nu)."""
        p, q, g = params
        x = np.asarray(frequency, float)
        m = np.asarray(monetary, float)
        return (
            gammaln(p * x + q) - gammaln(p * x) - gammaln(q)
            + q * np.log(g) + (p * x - 1) * np.log(m) + p * x * np.log(x)
            - (p * x + q) * np.log(g + m * x)
        )  # fmt: skip

    def fit(
        self,
        frequency: np.ndarray,
        monetary: np.ndarray,
        initial: tuple[float, float, float] = (1.0, 1.0, 1.0),
    ) -> GammaGammaModel:
        """Fit ``p, q, gamma`` on customers with ``frequency > 0`` and ``monetary > 0``.

        Returns
        -------
        GammaGammaModel
            ``self``, fitted.
        """
        x = np.asarray(frequency, float)
        m = np.asarray(monetary, float)
        keep = (x > 0) & (m > 0)
        x, m = x[keep], m[keep]
        if x.size < 3:
            raise ValueError("need at least 3 customers with repeat purchases")
        scale = float(np.mean(m))

        def objective(log_params: np.ndarray) -> float:
            p, q, g = np.exp(log_params)
            ll = self.log_likelihood((p, q, g), x, m / scale)
            value = -float(np.mean(ll)) + self.penalizer * float(np.sum(log_params**2))
            return value if np.isfinite(value) else 1e10

        start = np.log(np.array(initial, float))
        bounds = [(-LOG_BOUND, LOG_BOUND)] * 3
        result = minimize(
            objective, start, method="Nelder-Mead", bounds=bounds, options={"maxiter": 4000}
        )
        result = minimize(objective, result.x, method="L-BFGS-B", bounds=bounds)
        p, q, g = np.exp(result.x)
        self.params_ = {"p": float(p), "q": float(q), "gamma": float(g * scale)}
        self.log_likelihood_ = float(np.sum(self.log_likelihood(self._p(), x, m)))
        self.n_customers_ = int(x.size)
        self.converged_ = bool(result.success)
        return self

    def _p(self) -> tuple[float, float, float]:
        return self.params_["p"], self.params_["q"], self.params_["gamma"]

    def conditional_expected_average_value(
        self, frequency: np.ndarray, monetary: np.ndarray
    ) -> np.ndarray:
        """E[mean purchase value | x, m_x]: a weighted mean of the population mean and the
        customer's own mean; the population mean ``p gamma / (q - 1)`` when ``x = 0``."""
        p, q, g = self._p()
        x = np.asarray(frequency, float)
        m = np.asarray(monetary, float)
        m = np.where(x > 0, m, 0.0)
        return p * (g + m * x) / (p * x + q - 1)


def customer_lifetime_value(
    bgnbd: BetaGeoModel,
    expected_value: np.ndarray,
    frequency: np.ndarray,
    recency: np.ndarray,
    T: np.ndarray,
    horizon_days: int = 365,
    annual_discount_rate: float = 0.1,
    step_days: int = 30,
) -> np.ndarray:
    """Discounted expected value of future purchases over ``horizon_days``.

    The horizon is cut into steps of ``step_days``; the purchases expected in each step (from
    the BG/NBD conditional expectation) times the expected value per purchase (Gamma-Gamma) are
    discounted to today at ``annual_discount_rate`` per year, applied at each step's end.

    Returns
    -------
    numpy.ndarray
        CLV per customer, in the currency of ``expected_value``.
    """
    n_steps = max(math.ceil(horizon_days / step_days), 1)
    total = np.zeros(np.asarray(frequency).shape, dtype=float)
    previous = np.zeros_like(total)
    for i in range(1, n_steps + 1):
        t = min(i * step_days, horizon_days)
        cumulative = bgnbd.conditional_expected_purchases(t, frequency, recency, T)
        factor = (1 + annual_discount_rate) ** (t / 365.0)
        total += (cumulative - previous) * np.asarray(expected_value, float) / factor
        previous = cumulative
    return total


def summary_from_transactions(
    transactions: pl.DataFrame,
    as_of_date: date,
    customer_col: str = "customer_id",
    date_col: str = "date",
    amount_col: str = "amount",
) -> pl.DataFrame:
    """Per-customer (frequency, recency, T, monetary_value) from a transaction log.

    Transactions on the same day count as one purchase (their amounts are summed); rows after
    ``as_of_date`` are ignored. ``monetary_value`` is the mean of the repeat purchase days
    (the first purchase excluded), 0 without repeat purchases.

    Parameters
    ----------
    transactions
        One row per transaction with a customer id, a date and an amount.
    as_of_date
        End of the calibration period (inclusive).

    Returns
    -------
    polars.DataFrame
        ``customer_id, frequency, recency, T, monetary_value``, one row per customer with a
        purchase on or before ``as_of_date``, sorted by customer.
    """
    days = (
        transactions.lazy()
        .select(
            pl.col(customer_col).cast(pl.String).alias("customer_id"),
            pl.col(date_col).cast(pl.Date).alias("day"),
            pl.col(amount_col).cast(pl.Float64).alias("amount"),
        )
        .filter(pl.col("day") <= as_of_date)
        .group_by("customer_id", "day")
        .agg(pl.col("amount").sum())
        .sort("customer_id", "day")
    )
    end = pl.lit(as_of_date)
    return (
        days.group_by("customer_id")
        .agg(
            (pl.len() - 1).alias("frequency"),
            (pl.col("day").max() - pl.col("day").min()).dt.total_days().alias("recency"),
            (end - pl.col("day").min()).dt.total_days().alias("T"),
            pl.col("amount").slice(1).mean().fill_null(0.0).alias("monetary_value"),
        )
        .with_columns(pl.col("frequency").cast(pl.Int64))
        .sort("customer_id")
        .collect()
    )


@dataclass(frozen=True)
class CLVParams:
    """Fitted parameters of both models (the lifetime-value model saved in the model store)."""

    kind: ClassVar[str] = "clv"

    r: float
    alpha: float
    a: float
    b: float
    p: float
    q: float
    gamma: float

    def to_state(self) -> dict[str, float]:
        """The seven parameters by name (see the model store)."""
        return {k: float(v) for k, v in asdict(self).items()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        """The parameters :meth:`to_state` described."""
        return cls(**state)

    def models(self) -> tuple[BetaGeoModel, GammaGammaModel]:
        """Estimators carrying these parameters, ready to predict."""
        bg = BetaGeoModel()
        bg.params_ = {"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b}
        gg = GammaGammaModel()
        gg.params_ = {"p": self.p, "q": self.q, "gamma": self.gamma}
        return bg, gg


def score_customers(
    summary: pl.DataFrame,
    params: CLVParams,
    horizon_days: int = 365,
    annual_discount_rate: float = 0.1,
) -> pl.DataFrame:
    """Probability alive, expected purchases (30/90/365 days), expected order value and CLV.

    Parameters
    ----------
    summary
        Output of :func:`summary_from_transactions` (or the same columns from SQL).
    params
        Fitted model parameters.
    horizon_days, annual_discount_rate
        CLV horizon and yearly discount rate.

    Returns
    -------
    polars.DataFrame
        ``summary``'s columns plus ``prob_alive``, ``expected_purchases_30d``,
        ``expected_purchases_90d``, ``expected_purchases_365d``, ``expected_avg_order_value``,
        ``clv``.
    """
    bg, gg = params.models()
    x = summary["frequency"].to_numpy().astype(float)
    t_x = summary["recency"].to_numpy().astype(float)
    big_t = summary["T"].to_numpy().astype(float)
    m = summary["monetary_value"].to_numpy().astype(float)
    value = gg.conditional_expected_average_value(x, m)
    return summary.with_columns(
        pl.Series("prob_alive", bg.probability_alive(x, t_x, big_t)),
        pl.Series("expected_purchases_30d", bg.conditional_expected_purchases(30, x, t_x, big_t)),
        pl.Series("expected_purchases_90d", bg.conditional_expected_purchases(90, x, t_x, big_t)),
        pl.Series("expected_purchases_365d", bg.conditional_expected_purchases(365, x, t_x, big_t)),
        pl.Series("expected_avg_order_value", value),
        pl.Series(
            "clv",
            customer_lifetime_value(bg, value, x, t_x, big_t, horizon_days, annual_discount_rate),
        ),
    )
