"""Customer lifetime value: what the clv_model and customer_clv tables hold.

``clv_model`` says, for each day, which BG/NBD + Gamma-Gamma fit is in force: the models are
refitted by maximum likelihood on the purchase history up to the refit day (default every
Monday) and saved once per fit in the model store. ``customer_clv`` applies the fit in force to
every customer with a purchase. SciPy is imported inside the functions that fit or score.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

import duckdb
import polars as pl
from dagster import Config
from pydantic import Field

from seg_pipeline.features.reviews import refit_day
from seg_pipeline.models.store import ModelStore, fingerprint
from seg_pipeline.resources import query_frame, read_sql
from seg_pipeline.tables import row_of_day

KIND = "clv"

CLV_MODEL_SCHEMA = {
    "as_of_date": pl.Date,
    "model_version": pl.String,
    "fitted_on": pl.Date,
    "n_customers": pl.Int64,
    "bgnbd_r": pl.Float64,
    "bgnbd_alpha": pl.Float64,
    "bgnbd_a": pl.Float64,
    "bgnbd_b": pl.Float64,
    "bgnbd_log_likelihood": pl.Float64,
    "gg_n_customers": pl.Int64,
    "gg_p": pl.Float64,
    "gg_q": pl.Float64,
    "gg_gamma": pl.Float64,
    "gg_log_likelihood": pl.Float64,
    "converged": pl.Boolean,
}
# The columns a fit fills (as_of_date, model_version and fitted_on describe the day).
FIT_COLUMNS = tuple(CLV_MODEL_SCHEMA)[3:]

SCORE_COLUMNS = (
    "prob_alive",
    "expected_purchases_30d",
    "expected_purchases_90d",
    "expected_purchases_365d",
    "expected_avg_order_value",
    "clv",
)


class CLVModelConfig(Config):
    """How the BG/NBD and Gamma-Gamma models are refitted."""

    refit_every_days: int = Field(default=7, description="refit schedule (7: every Monday)")
    penalizer: float = Field(default=0.0, description="L2 penalty on the log-parameters")
    min_customers: int = Field(default=50, description="fewer buyers: parameters left null")


class CLVScoreConfig(Config):
    """Lifetime value horizon and discounting."""

    horizon_days: int = Field(default=365, description="CLV horizon in days")
    annual_discount_rate: float = Field(default=0.10, description="yearly discount rate")


def clv_summary(conn: duckdb.DuckDBPyConnection, as_of_date: date) -> pl.DataFrame:
    """Frequency, recency, T and monetary value per customer as of ``as_of_date``."""
    return query_frame(conn, read_sql("features/clv_summary"), {"as_of_date": as_of_date})


def fit_clv(summary: pl.DataFrame, penalizer: float = 0.0) -> dict[str, Any]:
    """Fit BG/NBD on every customer and Gamma-Gamma on those with repeat purchases; the
    :data:`FIT_COLUMNS` of the fit."""
    from seg_pipeline.features.clv import BetaGeoModel, GammaGammaModel

    x = summary["frequency"].to_numpy().astype(float)
    bg = BetaGeoModel(penalizer=penalizer).fit(
        x, summary["recency"].to_numpy().astype(float), summary["T"].to_numpy().astype(float)
    )
    gg = GammaGammaModel(penalizer=penalizer).fit(
        x, summary["monetary_value"].to_numpy().astype(float)
    )
    return {
        "n_customers": bg.n_customers_,
        "bgnbd_r": bg.params_["r"],
        "bgnbd_alpha": bg.params_["alpha"],
        "bgnbd_a": bg.params_["a"],
        "bgnbd_b": bg.params_["b"],
        "bgnbd_log_likelihood": bg.log_likelihood_,
        "gg_n_customers": gg.n_customers_,
        "gg_p": gg.params_["p"],
        "gg_q": gg.params_["q"],
        "gg_gamma": gg.params_["gamma"],
        "gg_log_likelihood": gg.log_likelihood_,
        "converged": bool(bg.converged_ and gg.converged_),
    }


def clv_model_rows(
    conn: duckdb.DuckDBPyConnection, day: date, settings: CLVModelConfig, models: ModelStore
) -> pl.DataFrame:
    """The ``clv_model`` row of ``day``: parameters fitted on the history up to the refit day
    (calibration end) on or before it; null parameters when that history has fewer than
    ``min_customers`` buyers or fewer than 3 repeat buyers.

    Only the refit day's history is fitted, once: the fit is saved in the model store and the
    other days (and re-runs) find it there. Other settings give another version.
    """
    from seg_pipeline.features.clv import CLVParams

    fitted_on = refit_day(day, settings.refit_every_days)
    model_version = f"{fitted_on:%Y%m%d}-{KIND}-{fingerprint(settings.model_dump())}"
    found = models.version(conn, model_version)
    if found is not None:
        fit = found.metrics
    else:
        summary = clv_summary(conn, fitted_on)
        repeaters = summary.filter(
            (pl.col("frequency") > 0) & (pl.col("monetary_value") > 0)
        ).height
        if summary.height < settings.min_customers or repeaters < 3:
            fit = {column: None for column in FIT_COLUMNS}
            fit.update(n_customers=summary.height, gg_n_customers=repeaters, converged=False)
            model_version = None
        else:
            fit = fit_clv(summary, settings.penalizer)
            params = CLVParams(
                *(fit[k] for k in ("bgnbd_r", "bgnbd_alpha", "bgnbd_a", "bgnbd_b")),
                *(fit[k] for k in ("gg_p", "gg_q", "gg_gamma")),
            )
            models.save(
                conn,
                params,
                model_version,
                training_end=fitted_on,
                params=settings.model_dump(),
                metrics=fit,
            )
    row = {"as_of_date": day, "model_version": model_version, "fitted_on": fitted_on, **fit}
    return pl.DataFrame([row], schema=CLV_MODEL_SCHEMA)


def params_metadata(row: Mapping[str, Any]) -> dict[str, float | int | str]:
    """The fitted parameters and log-likelihoods, for materialization metadata."""
    out: dict[str, float | int | str] = {k: row[k] for k in FIT_COLUMNS if k != "converged"}
    out["fitted_on"] = row["fitted_on"].isoformat()
    out["model_version"] = row["model_version"] or "none"
    out["converged"] = str(bool(row["converged"]))
    return out


def summarize_clv_models(
    conn: duckdb.DuckDBPyConnection,
    start: date,
    end: date,
    last: pl.DataFrame,
    settings: CLVModelConfig,
    models: ModelStore,
) -> dict[str, Any]:
    """Metadata: the parameters in force on the run's last day."""
    return params_metadata(last.row(0, named=True))


def customer_clv_frame(
    summary: pl.DataFrame,
    params: Any,
    as_of_date: date,
    fitted_on: date,
    horizon_days: int,
    annual_discount_rate: float,
) -> pl.DataFrame:
    """Rows of ``customer_clv`` for one day (null scores when ``params`` is ``None``)."""
    from seg_pipeline.features.clv import score_customers

    if params is None:
        scored = summary.with_columns(
            pl.lit(None, dtype=pl.Float64).alias(c) for c in SCORE_COLUMNS
        )
    else:
        scored = score_customers(summary, params, horizon_days, annual_discount_rate)
    return scored.select(
        pl.lit(as_of_date, dtype=pl.Date).alias("as_of_date"),
        pl.col("customer_id").cast(pl.String),
        pl.col("frequency").cast(pl.Int64),
        pl.col("recency").cast(pl.Float64),
        pl.col("T").cast(pl.Float64),
        pl.col("monetary_value").cast(pl.Float64),
        *(pl.col(c).cast(pl.Float64) for c in SCORE_COLUMNS),
        pl.lit(horizon_days, dtype=pl.Int64).alias("clv_horizon_days"),
        pl.lit(fitted_on, dtype=pl.Date).alias("model_fitted_on"),
    )


def customer_clv_rows(
    conn: duckdb.DuckDBPyConnection, day: date, settings: CLVScoreConfig, models: ModelStore
) -> pl.DataFrame:
    """Every customer with a purchase by ``day``, scored with the clv_model in force that day."""
    from seg_pipeline.features.clv import CLVParams

    in_force = row_of_day(conn, "clv_model", day)
    version = in_force["model_version"]
    params = models.load(conn, version, CLVParams) if version else None
    return customer_clv_frame(
        clv_summary(conn, day),
        params,
        day,
        in_force["fitted_on"],
        settings.horizon_days,
        settings.annual_discount_rate,
    )


def summarize_customer_clv(
    conn: duckdb.DuckDBPyConnection,
    start: date,
    end: date,
    last: pl.DataFrame,
    settings: CLVScoreConfig,
    models: ModelStore,
) -> dict[str, Any]:
    """Metadata: total CLV and mean probability alive on the run's last day, and the model
    version used."""
    return {
        "clv_model_version": row_of_day(conn, "clv_model", end)["model_version"] or "none",
        "total_clv_last_day": float(last["clv"].sum() or 0.0),
        "mean_prob_alive_last_day": float(last["prob_alive"].mean() or 0.0),
    }
