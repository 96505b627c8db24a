"""VADER sentiment on known sentences and the TF-IDF + NMF topic model on known topics."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np

from seg_pipeline.features.nlp import (
    TopicModel,
    fit_topic_model,
    rating_agreement,
    sentiment_labels,
    sentiment_scores,
)
from seg_pipeline.models.store import ModelStore
from seg_pipeline.resources import Warehouse


def test_vader_scores_known_sentences() -> None:
    scores = sentiment_scores(
        [
            "Fantastic customer service, the agent was polite and helpful.",
            "Terrible quality, the lamp was defective out of the box.",
            "The parcel arrived on Tuesday.",
            None,
        ]
    )
    assert scores[0] > 0.5 and scores[1] < -0.5 and abs(scores[2]) < 0.05
    assert np.isnan(scores[3])
    assert sentiment_labels(scores) == ["positive", "negative", "neutral", None]


def test_rating_agreement() -> None:
    result = rating_agreement(np.array([0.8, 0.6, -0.7, 0.3, -0.2]), np.array([5, 4, 1, 2, 3]))
    assert result["n_polar"] == 4 and result["polar_agreement"] == 0.75
    assert result["spearman"] > 0.5


def test_topic_model_separates_known_topics_and_round_trips(tmp_path: Path) -> None:
    delivery = [f"delivery courier parcel shipping late {w}" for w in ("box", "door", "van")]
    price = [f"price value money cheap expensive {w}" for w in ("deal", "sale", "cost")]
    texts = (delivery + price) * 10
    model = fit_topic_model(texts, n_topics=2, seed=0)
    topics, weights = model.transform(["the courier lost my parcel", "great value for money"])
    assert topics[0] != topics[1] and (weights > 0).all()
    assert any(t in model.labels[topics[0]] for t in ("delivery", "courier", "parcel"))
    assert any(t in model.labels[topics[1]] for t in ("price", "value", "money"))
    store = ModelStore(model_dir=str(tmp_path / "models"))
    with Warehouse(database=str(tmp_path / "w.duckdb")).connection() as conn:
        store.save(conn, model, "v1", training_end=date(2026, 1, 5))
        again = store.load(conn, "v1", TopicModel)
    assert (again.transform(texts)[0] == model.transform(texts)[0]).all()
    assert model.transform(["zzz qqq"])[0][0] == -1  # no known term: no topic
