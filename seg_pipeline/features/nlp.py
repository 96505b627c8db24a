"""Review NLP: VADER sentiment per review and a TF-IDF + NMF topic model.

Plain functions over lists of texts and numpy arrays; the assets only read and write the
warehouse around them. VADER's lexicon ships inside the ``vaderSentiment`` package, so nothing
is downloaded at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar, Self

import numpy as np
from scipy.stats import spearmanr
from sklearn.decomposition import NMF
from sklearn.feature_extraction.text import TfidfVectorizer
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

# VADER's usual thresholds on the compound score.
POSITIVE_THRESHOLD = 0.05
NEGATIVE_THRESHOLD = -0.05


@lru_cache(maxsize=1)
def _analyzer() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()


def sentiment_scores(texts: list[str | None]) -> np.ndarray:
    """VADER compound score of each text, in [-1, 1]; ``nan`` for a missing text.

    Parameters
    ----------
    texts
        Review texts.

    Returns
    -------
    numpy.ndarray
        Float array of the same length as ``texts``.
    """
    analyzer = _analyzer()
    return np.array(
        [np.nan if not t else analyzer.polarity_scores(t)["compound"] for t in texts],
        dtype=float,
    )


def sentiment_labels(compound: np.ndarray) -> list[str | None]:
    """``positive`` / ``neutral`` / ``negative`` from VADER compound scores (``None`` for nan)."""
    out: list[str | None] = []
    for c in compound:
        if np.isnan(c):
            out.append(None)
        elif c >= POSITIVE_THRESHOLD:
            out.append("positive")
        elif c <= NEGATIVE_THRESHOLD:
            out.append("negative")
        else:
            out.append("neutral")
    return out


def rating_agreement(compound: np.ndarray, rating: np.ndarray) -> dict[str, float | int]:
    """How well sentiment agrees with the star rating.

    Parameters
    ----------
    compound
        VADER compound scores.
    rating
        Star ratings (1-5) of the same reviews.

    Returns
    -------
    dict
        ``n_reviews``; ``spearman`` (rank correlation of score and rating); ``polar_agreement``:
        among reviews rated 4-5 or 1-2, the share whose score has the rating's sign (positive
        for 4-5, negative for 1-2, using the +/-0.05 thresholds); ``n_polar``.
    """
    compound = np.asarray(compound, dtype=float)
    rating = np.asarray(rating, dtype=float)
    ok = ~(np.isnan(compound) | np.isnan(rating))
    c, r = compound[ok], rating[ok]
    result: dict[str, float | int] = {"n_reviews": int(ok.sum())}
    if c.size >= 3 and np.ptp(c) > 0 and np.ptp(r) > 0:
        result["spearman"] = float(spearmanr(c, r).statistic)
    else:
        result["spearman"] = float("nan")
    polar = (r >= 4) | (r <= 2)
    agree = ((r >= 4) & (c >= POSITIVE_THRESHOLD)) | ((r <= 2) & (c <= NEGATIVE_THRESHOLD))
    result["n_polar"] = int(polar.sum())
    result["polar_agreement"] = float(agree[polar].mean()) if polar.any() else float("nan")
    return result


@dataclass
class TopicModel:
    """A fitted TF-IDF vectoriser and NMF factorisation, with a label per topic.

    Attributes
    ----------
    vectorizer
        The fitted ``TfidfVectorizer``.
    nmf
        The fitted ``NMF``.
    labels
        One label per topic: its top terms joined by ``/``.
    top_terms
        The top terms of each topic, by weight.
    """

    kind: ClassVar[str] = "review_topics"

    vectorizer: TfidfVectorizer
    nmf: NMF
    labels: list[str]
    top_terms: list[list[str]]

    @property
    def n_topics(self) -> int:
        return len(self.labels)

    def to_state(self) -> dict[str, Any]:
        """The model as scikit-learn objects and plain values (see the model store)."""
        return {
            "vectorizer": self.vectorizer,
            "nmf": self.nmf,
            "labels": list(self.labels),
            "top_terms": [list(t) for t in self.top_terms],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        """The model :meth:`to_state` described."""
        return cls(
            vectorizer=state["vectorizer"],
            nmf=state["nmf"],
            labels=list(state["labels"]),
            top_terms=[list(t) for t in state["top_terms"]],
        )

    def transform(self, texts: list[str | None]) -> tuple[np.ndarray, np.ndarray]:
        """Topic id (-1 when no topic term occurs) and topic weight of each text."""
        clean = [t or "" for t in texts]
        if not clean:
            return np.zeros(0, dtype=int), np.zeros(0)
        weights = self.nmf.transform(self.vectorizer.transform(clean))
        topic = weights.argmax(axis=1)
        best = weights.max(axis=1)
        topic = np.where(best > 0, topic, -1)
        return topic, best

    def label_of(self, topic_ids: np.ndarray) -> list[str | None]:
        """Label of each topic id (``None`` for -1)."""
        return [self.labels[i] if i >= 0 else None for i in topic_ids]


def fit_topic_model(
    texts: list[str],
    n_topics: int = 6,
    seed: int = 0,
    max_features: int = 2000,
    n_label_terms: int = 3,
) -> TopicModel:
    """Fit TF-IDF (English stop words removed, uni- and bigrams) and NMF on ``texts``.

    Parameters
    ----------
    texts
        Training review texts (at least ``n_topics`` non-empty ones).
    n_topics
        Number of NMF components.
    seed
        Random state of NMF's initialisation.
    max_features
        Vocabulary size of the vectoriser.
    n_label_terms
        How many top terms make a topic's label.

    Returns
    -------
    TopicModel
    """
    docs = [t for t in texts if t]
    if len(docs) < n_topics:
        raise ValueError(f"need at least {n_topics} texts to fit {n_topics} topics")
    vectorizer = TfidfVectorizer(
        stop_words="english",
        max_features=max_features,
        ngram_range=(1, 2),
        min_df=2 if len(docs) >= 50 else 1,
        sublinear_tf=True,
    )
    matrix = vectorizer.fit_transform(docs)
    nmf = NMF(n_components=n_topics, init="nndsvda", random_state=seed, max_iter=500)
    nmf.fit(matrix)
    terms = vectorizer.get_feature_names_out()
    top_terms: list[list[str]] = []
    for component in nmf.components_:
        ranked = [str(terms[i]) for i in np.argsort(component)[::-1]]
        # prefer single words in the label; skip words already covered
        chosen: list[str] = []
        for term in ranked:
            if " " in term or term in chosen:
                continue
            chosen.append(term)
            if len(chosen) == 10:
                break
        top_terms.append(chosen)
    labels = _unique_labels([t[:n_label_terms] for t in top_terms])
    return TopicModel(vectorizer=vectorizer, nmf=nmf, labels=labels, top_terms=top_terms)


def _unique_labels(term_lists: list[list[str]]) -> list[str]:
    labels: list[str] = []
    for i, terms in enumerate(term_lists):
        label = "/".join(terms) or f"topic_{i}"
        if label in labels:
            label = f"{label}#{i}"
        labels.append(label)
    return labels
