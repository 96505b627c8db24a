"""Review topics and sentiment: what the review_topic_model and review_nlp tables hold.

``review_topic_model`` says, for each day, which topic model is in force: a TF-IDF + NMF model
refitted on a schedule (default every Monday) on the reviews of a lookback window, saved once
per fit in the model store. ``review_nlp`` scores each review with VADER sentiment and the
strongest topic of the model in force on its arrival day. scikit-learn and VADER are imported
inside the functions that need them, so loading the definitions does not pay for them.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import polars as pl
from dagster import Config, MetadataValue
from pydantic import Field

from seg_pipeline.models.store import ModelStore, fingerprint
from seg_pipeline.resources import query_frame, read_sql
from seg_pipeline.tables import row_of_day

if TYPE_CHECKING:
    from seg_pipeline.features.nlp import TopicModel

# Refit days fall every ``refit_every_days`` counted from this Monday (weekly refits: Mondays).
REFIT_EPOCH = date(2000, 1, 3)

TOPIC_MODEL_SCHEMA = {
    "as_of_date": pl.Date,
    "model_version": pl.String,
    "fitted_on": pl.Date,
    "train_start": pl.Date,
    "n_reviews": pl.Int64,
    "n_topics": pl.Int64,
    "topic_labels": pl.List(pl.String),
}

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


class TopicModelConfig(Config):
    """How the review topic model is refitted."""

    n_topics: int = Field(default=6, description="NMF topics")
    lookback_days: int = Field(default=365, description="arrival days of reviews to train on")
    refit_every_days: int = Field(default=7, description="refit schedule (7: every Monday)")
    max_features: int = Field(default=2000, description="TF-IDF vocabulary size")
    min_reviews: int = Field(default=30, description="fewer training reviews: no model")
    seed: int = Field(default=0, description="random state of NMF")


def refit_day(day: date, every_days: int) -> date:
    """The latest refit day on or before ``day`` (every ``every_days`` days from a Monday)."""
    if every_days < 1:
        raise ValueError("every_days must be at least 1")
    return day - timedelta(days=(day - REFIT_EPOCH).days % every_days)


def topic_model_rows(
    conn: duckdb.DuckDBPyConnection, day: date, settings: TopicModelConfig, models: ModelStore
) -> pl.DataFrame:
    """The ``review_topic_model`` row of ``day``: the model fitted on the refit day.

    The training window is the ``lookback_days`` arrival days ending on the refit day, so the
    model of a day never sees a review that arrived or was written after it. A refit day's
    model is fitted once and saved in the model store; the other days of its week find it
    there. Fewer training reviews than ``min_reviews``: no model (``model_version`` null).
    """
    from seg_pipeline.features.nlp import TopicModel, fit_topic_model

    fitted_on = refit_day(day, settings.refit_every_days)
    train_start = fitted_on - timedelta(days=settings.lookback_days - 1)
    model_version = f"{fitted_on:%Y%m%d}-{TopicModel.kind}-{fingerprint(settings.model_dump())}"
    found = models.version(conn, model_version)
    if found is None:
        texts = query_frame(
            conn,
            read_sql("features/review_topic_training"),
            {"start_date": train_start, "end_date": fitted_on},
        )["review_text"].to_list()
        if len(texts) >= max(settings.min_reviews, settings.n_topics):
            model = fit_topic_model(texts, settings.n_topics, settings.seed, settings.max_features)
            found = models.save(
                conn,
                model,
                model_version,
                training_start=train_start,
                training_end=fitted_on,
                params=settings.model_dump(),
                metrics={"n_reviews": len(texts)},
                details={"topic_labels": model.labels},
            )
    if found is None:
        row: dict[str, Any] = {"model_version": None, "n_reviews": len(texts), "labels": []}
    else:
        row = {
            "model_version": found.model_version,
            "n_reviews": found.metrics["n_reviews"],
            "labels": found.details["topic_labels"],
        }
    return pl.DataFrame(
        [
            {
                "as_of_date": day,
                "model_version": row["model_version"],
                "fitted_on": fitted_on,
                "train_start": train_start,
                "n_reviews": row["n_reviews"],
                "n_topics": len(row["labels"]),
                "topic_labels": row["labels"],
            }
        ],
        schema=TOPIC_MODEL_SCHEMA,
    )


def summarize_topic_models(
    conn: duckdb.DuckDBPyConnection,
    start: date,
    end: date,
    last: pl.DataFrame,
    settings: TopicModelConfig,
    models: ModelStore,
) -> dict[str, Any]:
    """Metadata: the model in force on the run's last day."""
    row = last.row(0, named=True)
    return {
        "model_version": row["model_version"] or "none",
        "latest_fitted_on": row["fitted_on"].isoformat(),
        "latest_training_reviews": row["n_reviews"],
        "latest_topic_labels": MetadataValue.json(list(row["topic_labels"])),
    }


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
    from seg_pipeline.features.nlp import sentiment_labels, sentiment_scores

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


def review_nlp_rows(
    conn: duckdb.DuckDBPyConnection, day: date, settings: None, models: ModelStore
) -> pl.DataFrame:
    """The reviews that arrived on ``day``, scored with the topic model in force that day."""
    from seg_pipeline.features.nlp import TopicModel

    reviews = query_frame(conn, read_sql("features/review_nlp_input"), {"as_of_date": day})
    in_force = row_of_day(conn, "review_topic_model", day)
    version = in_force["model_version"]
    model = models.load(conn, version, TopicModel) if version else None
    return score_reviews(reviews, model, in_force["fitted_on"])


def summarize_review_nlp(
    conn: duckdb.DuckDBPyConnection,
    start: date,
    end: date,
    last: pl.DataFrame,
    settings: None,
    models: ModelStore,
) -> dict[str, Any]:
    """Metadata: VADER/star-rating agreement over the run's reviews, reviews with a topic,
    the topic model version used on the last day."""
    from seg_pipeline.features.nlp import rating_agreement

    scored = query_frame(
        conn, read_sql("features/review_nlp_window"), {"start_date": start, "end_date": end}
    )
    agreement = rating_agreement(
        scored["sentiment_compound"].fill_null(np.nan).to_numpy(),
        scored["rating"].cast(pl.Float64).fill_null(np.nan).to_numpy(),
    )
    return {
        "topic_model_version": row_of_day(conn, "review_topic_model", end)["model_version"]
        or "none",
        "sentiment_rating_spearman": agreement["spearman"],
        "sentiment_rating_polar_agreement": agreement["polar_agreement"],
        "reviews_with_topic": int(scored["topic_id"].is_not_null().sum()),
    }
