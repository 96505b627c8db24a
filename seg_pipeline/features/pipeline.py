"""Plain functions behind the feature assets: each computes one day's rows of one table.

They take an open warehouse connection (inside a transaction when they write) and dates, and
never open DuckDB themselves, so tests call them without Dagster.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import duckdb
import numpy as np
import polars as pl

from seg_pipeline.features.clv import BetaGeoModel, CLVParams, GammaGammaModel, score_customers
from seg_pipeline.features.columns import STATE_KEEP_DAYS
from seg_pipeline.features.nlp import (
    TopicModel,
    fit_topic_model,
    rating_agreement,
    sentiment_labels,
    sentiment_scores,
)
from seg_pipeline.resources import (
    bind_params,
    query_frame,
    read_sql,
    replace_window,
    table_exists,
    write_frame,
)

# Refit days fall every ``refit_every_days`` counted from this Monday (weekly refits: Mondays).
REFIT_EPOCH = date(2000, 1, 3)

REVIEW_NLP_SCHEMA = {
    "review_id": pl.String,
    "customer_id": pl.String,
    "product_id": pl.String,
    "rating": pl.Int32,
    "review_date": pl.Date,
    "is_known_customer": pl.Boolean,
    "sentiment_compound": pl.Float64,
    "sentiment_label": pl.String,
    "topic_id": pl.Int32,
    "topic_label": pl.String,
    "topic_weight": pl.Float64,
    "topic_model_fitted_on": pl.Date,
    "arrival_date": pl.Date,
}


def refit_day(day: date, every_days: int) -> date:
    """The latest refit day on or before ``day`` (every ``every_days`` days from a Monday)."""
    if every_days < 1:
        raise ValueError("every_days must be at least 1")
    return day - timedelta(days=(day - REFIT_EPOCH).days % every_days)


# -- customer features -------------------------------------------------------------------------
#
# customer_features of day D = sql/features/customer_features.sql over
#   _feature_state: per customer, the running totals that do not depend on D
#     (sql/features/customer_feature_state.sql), either computed for every customer (full) or
#     carried over from the state stored for D - 1 with only the customers whose rows changed on
#     D recomputed (incremental; the same SQL, so the same values);
#   _web_fragments: web events counted per arrival day, customer, session and event day
#     (sql/features/web_session_fragments.sql, table web_session_fragments partitioned by
#     arrival day), so the 90-day web window reads a few rows per session, not every event.

STATE_TABLE = "customer_feature_state"
WEB_FRAGMENTS_TABLE = "web_session_fragments"
WEB_LOOKBACK_DAYS = 90
EARLIEST = date(1900, 1, 1)


def _create_temp(
    conn: duckdb.DuckDBPyConnection, name: str, sql: str, params: Mapping[str, Any]
) -> None:
    conn.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}", bind_params(sql, params))


def _scope_all_customers(conn: duckdb.DuckDBPyConnection, as_of_date: date) -> None:
    _create_temp(
        conn,
        "_feature_scope",
        "SELECT DISTINCT customer_id FROM stg_crm_customers "
        "WHERE arrival_date <= $d AND customer_id IS NOT NULL",
        {"d": as_of_date},
    )


# Customers whose state can differ between D - 1 and D: a row of theirs became visible on D (it
# arrived on D, or happened on D after arriving earlier), or a row of theirs was replaced by a
# delivery that became visible on D; and customers the CRM delivered on D.
TOUCHED_SQL = """
with
new_lines as (
    select order_id, line_number, customer_id from stg_orders
    where (arrival_date = $d and order_date <= $d) or (order_date = $d and arrival_date < $d)
),
new_reviews as (
    select review_id, customer_id from review_nlp
    where (arrival_date = $d and review_date <= $d) or (review_date = $d and arrival_date < $d)
)
select customer_id from stg_crm_customers where arrival_date = $d
union
select customer_id from new_lines
union
select o.customer_id from stg_orders as o
    semi join new_lines as n on n.order_id = o.order_id and n.line_number = o.line_number
    where o.arrival_date <= $d
union
select customer_id from stg_campaign_sends
    where (arrival_date = $d and sent_date <= $d) or (sent_date = $d and arrival_date < $d)
union
select customer_id from new_reviews
union
select r.customer_id from review_nlp as r
    semi join new_reviews as n on n.review_id = r.review_id
    where r.arrival_date <= $d
"""


def _has_state(conn: duckdb.DuckDBPyConnection, day: date) -> bool:
    if not table_exists(conn, STATE_TABLE):
        return False
    rows = conn.execute(
        f"SELECT count(*) FROM {STATE_TABLE} WHERE as_of_date = $d", {"d": day}
    ).fetchall()
    return bool(rows[0][0])


def compute_feature_state(
    conn: duckdb.DuckDBPyConnection, as_of_date: date, incremental: bool = True
) -> int | None:
    """Fill the temporary table ``_feature_state`` with the state of ``as_of_date``.

    Incremental when ``incremental`` and the state of the day before is stored: that state,
    with the customers touched on ``as_of_date`` recomputed. Returns the number of customers
    recomputed incrementally, or ``None`` when every customer was computed.
    """
    sql = read_sql("features/customer_feature_state")
    params = {"as_of_date": as_of_date}
    previous = as_of_date - timedelta(days=1)
    if not (incremental and _has_state(conn, previous)):
        _scope_all_customers(conn, as_of_date)
        _create_temp(conn, "_feature_state", sql, params)
        return None
    _create_temp(conn, "_feature_scope", TOUCHED_SQL, {"d": as_of_date})
    _create_temp(conn, "_feature_recomputed", sql, params)
    conn.execute(
        f"""CREATE OR REPLACE TEMP TABLE _feature_state AS
            SELECT s.* EXCLUDE (as_of_date) FROM {STATE_TABLE} AS s
            ANTI JOIN _feature_scope AS t ON t.customer_id = s.customer_id
            WHERE s.as_of_date = $previous
            UNION ALL BY NAME
            SELECT * FROM _feature_recomputed""",
        {"previous": previous},
    )
    touched = conn.execute("SELECT count(*) FROM _feature_scope").fetchall()[0][0]
    conn.execute("DROP TABLE _feature_recomputed")
    return int(touched)


def web_fragments_view(conn: duckdb.DuckDBPyConnection, stored: bool) -> None:
    """Point the temporary view ``_web_fragments`` at the stored fragments table, or compute
    the fragments on the fly from stg_web_events (nothing written)."""
    if stored:
        conn.execute(
            f"CREATE OR REPLACE TEMP VIEW _web_fragments AS SELECT * FROM {WEB_FRAGMENTS_TABLE}"
        )
        return
    sql = read_sql("features/web_session_fragments")
    # DuckDB binds no parameters in views: the whole history, filtered by the caller's query
    # (arrival_date and event_date are grouping keys, so the filters reach the scan).
    sql = sql.replace("$start_date", f"DATE '{EARLIEST}'").replace("$end_date", "DATE '9999-12-31'")
    conn.execute(f"CREATE OR REPLACE TEMP VIEW _web_fragments AS {sql}")


def write_web_fragments(conn: duckdb.DuckDBPyConnection, as_of_date: date) -> list[date]:
    """Replace partition ``as_of_date`` of ``web_session_fragments`` and compute the arrival
    days of the 90-day lookback that are missing (first run, gaps). Returns the days written.

    A fragment is flagged ``is_split`` when its session has another fragment in the days
    computed or in another stored arrival day within 90 days; the flag only decides whether
    customer_features adds the session up from its fragments (exact either way), so it needs
    to reach at least one fragment of each split session. The 90-day lookback relies on
    staging's rule that an event never arrives before it happened nor more than a week after.
    """
    sql = read_sql("features/web_session_fragments")
    first = as_of_date - timedelta(days=WEB_LOOKBACK_DAYS - 1)
    expected = {first + timedelta(days=i) for i in range(WEB_LOOKBACK_DAYS)}
    stored: set[date] = set()
    if table_exists(conn, WEB_FRAGMENTS_TABLE):
        stored = {
            r[0]
            for r in conn.execute(
                f"SELECT DISTINCT arrival_date FROM {WEB_FRAGMENTS_TABLE} "
                "WHERE arrival_date BETWEEN $first AND $last",
                {"first": first, "last": as_of_date},
            ).fetchall()
        }
    days = sorted((expected - stored) | {as_of_date})
    start, end = days[0], days[-1]
    _create_temp(conn, "_web_new", sql, {"start_date": start, "end_date": end})
    if table_exists(conn, WEB_FRAGMENTS_TABLE):
        # sessions that also have a fragment in another stored arrival day
        conn.execute(
            f"""UPDATE _web_new SET is_split = true
                FROM (
                    SELECT DISTINCT n.session_key, n.customer_id, n.session_id
                    FROM _web_new AS n
                    INNER JOIN {WEB_FRAGMENTS_TABLE} AS f
                        ON f.session_key = n.session_key
                        AND f.customer_id = n.customer_id
                        AND f.session_id IS NOT DISTINCT FROM n.session_id
                    WHERE f.arrival_date BETWEEN $low AND $high
                        AND f.arrival_date NOT BETWEEN $start AND $end
                ) AS other
                WHERE _web_new.session_key = other.session_key
                    AND _web_new.customer_id = other.customer_id
                    AND _web_new.session_id IS NOT DISTINCT FROM other.session_id""",
            {
                "low": start - timedelta(days=WEB_LOOKBACK_DAYS),
                "high": end + timedelta(days=WEB_LOOKBACK_DAYS),
                "start": start,
                "end": end,
            },
        )
    for day in days:
        replace_window(
            conn, WEB_FRAGMENTS_TABLE, "SELECT * FROM _web_new WHERE arrival_date = $d",
            {"d": day}, "arrival_date", day, day,
        )  # fmt: skip
    conn.execute("DROP TABLE _web_new")
    return days


def customer_features_query(conn: duckdb.DuckDBPyConnection, as_of_date: date) -> pl.DataFrame:
    """The customer_features snapshot of ``as_of_date`` computed in full, as a frame (nothing
    written; temporary tables only)."""
    compute_feature_state(conn, as_of_date, incremental=False)
    web_fragments_view(conn, stored=False)
    return query_frame(conn, read_sql("features/customer_features"), {"as_of_date": as_of_date})


def write_customer_features(
    conn: duckdb.DuckDBPyConnection, as_of_date: date, incremental: bool = True
) -> int:
    """Replace partition ``as_of_date`` of ``customer_features`` (inside a transaction);
    returns rows written.

    Also replaces that day's partitions of ``web_session_fragments`` and of
    ``customer_feature_state`` (kept for :data:`STATE_KEEP_DAYS` days so the next day can be
    incremental). ``incremental=False`` recomputes every customer; the rows are the same.
    """
    write_web_fragments(conn, as_of_date)
    web_fragments_view(conn, stored=True)
    compute_feature_state(conn, as_of_date, incremental)
    replace_window(
        conn, STATE_TABLE, "SELECT CAST($d AS DATE) AS as_of_date, * FROM _feature_state",
        {"d": as_of_date}, "as_of_date", as_of_date, as_of_date,
    )  # fmt: skip
    conn.execute(
        f"DELETE FROM {STATE_TABLE} WHERE as_of_date < "
        f"(SELECT max(as_of_date) FROM {STATE_TABLE}) - {STATE_KEEP_DAYS}"
    )
    sql = read_sql("features/customer_features")
    written = replace_window(
        conn, "customer_features", sql, {"as_of_date": as_of_date}, "as_of_date",
        as_of_date, as_of_date,
    )  # fmt: skip
    conn.execute("DROP TABLE IF EXISTS _feature_state")
    return written


# -- review topics and sentiment ---------------------------------------------------------------


@dataclass(frozen=True)
class TopicSettings:
    """How the review topic model is refitted."""

    n_topics: int = 6
    lookback_days: int = 365
    refit_every_days: int = 7
    max_features: int = 2000
    min_reviews: int = 30
    seed: int = 0


def fit_topic_model_row(
    conn: duckdb.DuckDBPyConnection, as_of_date: date, settings: TopicSettings
) -> tuple[dict[str, Any], TopicModel | None]:
    """The ``review_topic_model`` row of ``as_of_date``: the model fitted on the refit day.

    The training window is the ``lookback_days`` arrival days ending on the refit day, so the
    model of a day never sees a review that arrived or was written after it.
    """
    fitted_on = refit_day(as_of_date, settings.refit_every_days)
    train_start = fitted_on - timedelta(days=settings.lookback_days - 1)
    texts = query_frame(
        conn,
        read_sql("features/review_topic_training"),
        {"train_start": train_start, "fitted_on": fitted_on},
    )["review_text"].to_list()
    model = None
    if len(texts) >= max(settings.min_reviews, settings.n_topics):
        model = fit_topic_model(texts, settings.n_topics, settings.seed, settings.max_features)
    row = {
        "as_of_date": as_of_date,
        "fitted_on": fitted_on,
        "train_start": train_start,
        "n_reviews": len(texts),
        "n_topics": model.n_topics if model else 0,
        "topic_labels": model.labels if model else [],
        "model": model.to_bytes() if model else None,
    }
    return row, model


def topic_model_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={
            "as_of_date": pl.Date,
            "fitted_on": pl.Date,
            "train_start": pl.Date,
            "n_reviews": pl.Int64,
            "n_topics": pl.Int64,
            "topic_labels": pl.List(pl.String),
            "model": pl.Binary,
        },
    )


def load_topic_model(conn: duckdb.DuckDBPyConnection, as_of_date: date) -> TopicModel | None:
    """The topic model stored for ``as_of_date`` (``None`` if none could be fitted)."""
    rows = conn.execute(
        "SELECT model FROM review_topic_model WHERE as_of_date = $d", {"d": as_of_date}
    ).fetchall()
    row = rows[0] if rows else None
    if row is None:
        raise LookupError(f"review_topic_model has no partition {as_of_date}: materialize it")
    return TopicModel.from_bytes(row[0]) if row[0] is not None else None


def score_reviews(
    reviews: pl.DataFrame, model: TopicModel | None, fitted_on: date | None
) -> pl.DataFrame:
    """Sentiment and topic of each review (the review text is not kept).

    Parameters
    ----------
    reviews
        ``review_nlp_input`` rows (with ``review_text``).
    model
        Topic model to apply, or ``None`` to leave topics empty.
    fitted_on
        Fit day of ``model``.

    Returns
    -------
    polars.DataFrame
        Rows in :data:`REVIEW_NLP_SCHEMA`.
    """
    texts = reviews["review_text"].to_list()
    compound = sentiment_scores(texts)
    if model is not None and texts:
        topic, weight = model.transform(texts)
        labels = model.label_of(topic)
        topic_ids = [int(t) if t >= 0 else None for t in topic]
        weights = [float(w) if t >= 0 else None for t, w in zip(topic, weight, strict=True)]
    else:
        labels, topic_ids, weights = [None] * len(texts), [None] * len(texts), [None] * len(texts)
    return pl.DataFrame(
        {
            "review_id": reviews["review_id"],
            "customer_id": reviews["customer_id"],
            "product_id": reviews["product_id"],
            "rating": reviews["rating"],
            "review_date": reviews["review_date"],
            "is_known_customer": reviews["is_known_customer"],
            "sentiment_compound": [None if np.isnan(c) else float(c) for c in compound],
            "sentiment_label": sentiment_labels(compound),
            "topic_id": topic_ids,
            "topic_label": labels,
            "topic_weight": weights,
            "topic_model_fitted_on": [fitted_on if model else None] * len(texts),
            "arrival_date": reviews["arrival_date"],
        },
        schema=REVIEW_NLP_SCHEMA,
    )


def write_review_nlp(conn: duckdb.DuckDBPyConnection, arrival_date: date) -> pl.DataFrame:
    """Score the reviews that arrived on ``arrival_date`` and replace that partition of
    ``review_nlp``; returns the scored rows."""
    reviews = query_frame(
        conn, read_sql("features/review_nlp_input"), {"arrival_date": arrival_date}
    )
    model = load_topic_model(conn, arrival_date)
    fitted = conn.execute(
        "SELECT fitted_on FROM review_topic_model WHERE as_of_date = $d", {"d": arrival_date}
    ).fetchall()[0][0]
    scored = score_reviews(reviews, model, fitted)
    write_frame(conn, "review_nlp", scored, "arrival_date", arrival_date)
    return scored


def review_agreement(scored: pl.DataFrame) -> dict[str, float | int]:
    """VADER/star-rating agreement of scored reviews (see :func:`nlp.rating_agreement`)."""
    return rating_agreement(
        scored["sentiment_compound"].fill_null(np.nan).to_numpy(),
        scored["rating"].cast(pl.Float64).fill_null(np.nan).to_numpy(),
    )


# -- lifetime value ----------------------------------------------------------------------------


def clv_summary(conn: duckdb.DuckDBPyConnection, as_of_date: date) -> pl.DataFrame:
    """Frequency, recency, T and monetary value per customer as of ``as_of_date``."""
    return query_frame(conn, read_sql("features/clv_summary"), {"as_of_date": as_of_date})


CLV_MODEL_SCHEMA = {
    "as_of_date": pl.Date,
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


def fit_clv_models(
    summary: pl.DataFrame, penalizer: float = 0.0
) -> tuple[BetaGeoModel, GammaGammaModel]:
    """Fit BG/NBD on every customer and Gamma-Gamma on those with repeat purchases."""
    x = summary["frequency"].to_numpy().astype(float)
    bg = BetaGeoModel(penalizer=penalizer).fit(
        x, summary["recency"].to_numpy().astype(float), summary["T"].to_numpy().astype(float)
    )
    gg = GammaGammaModel(penalizer=penalizer).fit(
        x, summary["monetary_value"].to_numpy().astype(float)
    )
    return bg, gg


def clv_model_row(
    conn: duckdb.DuckDBPyConnection,
    as_of_date: date,
    refit_every_days: int,
    penalizer: float = 0.0,
    cache: dict[date, dict[str, Any]] | None = None,
    min_customers: int = 50,
) -> dict[str, Any]:
    """The ``clv_model`` row of ``as_of_date``: parameters fitted on the history up to the
    refit day (calibration end) on or before it; null parameters when that history has fewer
    than ``min_customers`` buyers or fewer than 3 repeat buyers.

    Only the refit day itself fits; the other days take the row stored for their refit day
    when there is one (the same fit: same calibration data), so a daily run between refits
    costs a lookup. Materialize the refit day again to refit with other settings.
    """
    fitted_on = refit_day(as_of_date, refit_every_days)
    if cache is not None and fitted_on in cache:
        return {**cache[fitted_on], "as_of_date": as_of_date}
    if as_of_date != fitted_on and table_exists(conn, "clv_model"):
        stored = query_frame(
            conn, "SELECT * FROM clv_model WHERE as_of_date = $d", {"d": fitted_on}
        ).to_dicts()
        if stored and stored[0]["fitted_on"] == fitted_on:
            if cache is not None:
                cache[fitted_on] = stored[0]
            return {**stored[0], "as_of_date": as_of_date}
    summary = clv_summary(conn, fitted_on)
    repeaters = summary.filter((pl.col("frequency") > 0) & (pl.col("monetary_value") > 0)).height
    if summary.height < min_customers or repeaters < 3:
        row = {k: None for k in CLV_MODEL_SCHEMA}
        row.update(
            as_of_date=as_of_date, fitted_on=fitted_on, n_customers=summary.height,
            gg_n_customers=repeaters, converged=False,
        )  # fmt: skip
        if cache is not None:
            cache[fitted_on] = row
        return row
    bg, gg = fit_clv_models(summary, penalizer)
    row = {
        "as_of_date": as_of_date,
        "fitted_on": fitted_on,
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
        "converged": bg.converged_ and gg.converged_,
    }
    if cache is not None:
        cache[fitted_on] = row
    return row


def load_clv_params(
    conn: duckdb.DuckDBPyConnection, as_of_date: date
) -> tuple[CLVParams | None, date]:
    """Parameters stored in ``clv_model`` for ``as_of_date`` (``None`` if it could not be
    fitted) and their calibration end."""
    rows = conn.execute(
        "SELECT bgnbd_r, bgnbd_alpha, bgnbd_a, bgnbd_b, gg_p, gg_q, gg_gamma, fitted_on "
        "FROM clv_model WHERE as_of_date = $d",
        {"d": as_of_date},
    ).fetchall()
    row = rows[0] if rows else None
    if row is None:
        raise LookupError(f"clv_model has no partition {as_of_date}: materialize it")
    if any(v is None for v in row[:7]):
        return None, row[7]
    return CLVParams(*row[:7]), row[7]


SCORE_COLUMNS = (
    "prob_alive",
    "expected_purchases_30d",
    "expected_purchases_90d",
    "expected_purchases_365d",
    "expected_avg_order_value",
    "clv",
)


def customer_clv_frame(
    summary: pl.DataFrame,
    params: CLVParams | None,
    as_of_date: date,
    fitted_on: date,
    horizon_days: int,
    annual_discount_rate: float,
) -> pl.DataFrame:
    """Rows of ``customer_clv`` for one day (null scores when ``params`` is ``None``)."""
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


def params_metadata(row: Mapping[str, Any]) -> dict[str, float | int | str]:
    """The fitted parameters and log-likelihoods, for materialization metadata."""
    keep = [k for k in CLV_MODEL_SCHEMA if k not in ("as_of_date", "converged")]
    out: dict[str, float | int | str] = {
        k: (row[k].isoformat() if isinstance(row[k], date) else row[k]) for k in keep
    }
    out["converged"] = str(bool(row["converged"]))
    return out
