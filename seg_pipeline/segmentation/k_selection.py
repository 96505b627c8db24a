"""Choosing the number of segments: internal scores, the consensus of three indices, the search.

:func:`search_k` fits and scores every candidate K of the configuration on one seeded sample and
picks one: the K silhouette, Calinski-Harabasz and Davies-Bouldin agree on best
(:func:`consensus_k`), the smallest BIC for the Gaussian mixture, or the fixed ``n_segments``.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl
from sklearn.base import BaseEstimator
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score

from seg_pipeline.segmentation.config import SegmentationConfig
from seg_pipeline.segmentation.estimators._base import check_k, sample_indices
from seg_pipeline.segmentation.estimators._ward import ward_cut_labels

SCORES_SCHEMA = {
    "k": pl.Int64,
    "silhouette": pl.Float64,
    "calinski_harabasz": pl.Float64,
    "davies_bouldin": pl.Float64,
    "bic": pl.Float64,
    "inertia": pl.Float64,
    "chosen": pl.Boolean,
}
"""Columns of the K-selection score table (``SegmenterFit.k_scores``)."""


def internal_scores(
    X: np.ndarray, labels: np.ndarray, seed: int, sample: int
) -> dict[str, float | None]:
    """Silhouette, Calinski-Harabasz and Davies-Bouldin on a seeded sample (None if undefined)."""
    idx = sample_indices(X.shape[0], sample, seed)
    Xs, ls = X[idx], labels[idx]
    n_labels = np.unique(ls).size
    if not 2 <= n_labels <= Xs.shape[0] - 1:
        return {"silhouette": None, "calinski_harabasz": None, "davies_bouldin": None}
    return {
        "silhouette": float(silhouette_score(Xs, ls)),
        "calinski_harabasz": float(calinski_harabasz_score(Xs, ls)),
        "davies_bouldin": float(davies_bouldin_score(Xs, ls)),
    }


def consensus_k(rows: list[dict]) -> int:
    """The K that the three internal indices agree on best (Borda count).

    Each candidate is ranked by silhouette (higher is better), Calinski-Harabasz (higher) and
    Davies-Bouldin (lower); the smallest sum of ranks wins, ties going to the higher
    silhouette.  One index alone is easily swayed: silhouette and Calinski-Harabasz favour
    merging two overlapping groups, Davies-Bouldin splitting a wide one.

    Parameters
    ----------
    rows
        One dict per candidate with ``k``, ``silhouette``, ``calinski_harabasz`` and
        ``davies_bouldin`` (None where undefined).
    """
    usable = [r for r in rows if r["silhouette"] is not None]
    if not usable:
        raise ValueError(f"no candidate K in {[r['k'] for r in rows]} gave a silhouette score")

    def ranks(key: str, reverse: bool) -> dict[int, int]:
        ordered = sorted(usable, key=lambda r: r[key], reverse=reverse)
        return {r["k"]: i for i, r in enumerate(ordered)}

    sil = ranks("silhouette", True)
    ch = ranks("calinski_harabasz", True)
    db = ranks("davies_bouldin", False)
    best = min(usable, key=lambda r: (sil[r["k"]] + ch[r["k"]] + db[r["k"]], sil[r["k"]]))
    return int(best["k"])


@dataclass
class KSearch:
    """The outcome of :func:`search_k`.

    Attributes
    ----------
    k_scores
        One row per candidate K (columns :data:`SCORES_SCHEMA`), the chosen one flagged.
    chosen_k
        K of the chosen row.
    selection
        The rule that chose it, in words.
    estimator
        The chosen K's estimator if the search already fitted it on every row (a fixed K),
        else None.
    """

    k_scores: pl.DataFrame
    chosen_k: int
    selection: str
    estimator: BaseEstimator | None


def search_k(
    X: np.ndarray,
    config: SegmentationConfig,
    make_estimator: Callable[[str, int, SegmentationConfig], BaseEstimator],
) -> KSearch:
    """Fit and score every candidate K of ``config`` and choose one.

    Candidates are ``config.n_segments`` if set, else ``k_min..k_max``.  They are fitted
    (``make_estimator(config.algorithm, k, config).fit``) and scored on one seeded sample of
    ``score_sample`` rows, so the search costs the same at any size; a single fixed K is
    fitted on every row.  Ward candidates are cuts of one hierarchy.

    Raises
    ------
    ValueError
        If ``X`` has no more rows (Ward: sample rows) than the largest K tried.
    """
    algorithm = config.algorithm
    n_rows = X.shape[0]
    if config.n_segments is not None:
        k_values = [config.n_segments]
    else:
        k_values = list(range(config.k_min, config.k_max + 1))
    limit = config.ward_sample if algorithm == "ward" else n_rows
    check_k(max(k_values), min(n_rows, limit))

    rows = []
    fitted: dict[int, BaseEstimator] = {}
    # Candidate K are fitted and scored on one seeded sample of score_sample rows (the chosen K
    # is then fitted on every training row): the search costs the same at any size.
    search = X[sample_indices(n_rows, config.score_sample, config.seed)]
    if len(k_values) == 1:
        search = X
    ward_labels = (
        ward_cut_labels(search, k_values, config.ward_sample, config.seed)
        if algorithm == "ward" and len(k_values) > 1
        else {}
    )
    for k in k_values:
        if k in ward_labels:
            labels, estimator = ward_labels[k], None
        else:
            estimator = make_estimator(algorithm, k, config).fit(search)
            labels = estimator.labels_
            if search is X:
                fitted[k] = estimator
        row = {"k": k, **internal_scores(search, labels, config.seed, config.score_sample)}
        # Only the mixture has a BIC, only K-Means an inertia.
        row["bic"] = getattr(estimator, "bic_", None)
        row["inertia"] = getattr(estimator, "inertia_", None)
        rows.append(row)

    if len(k_values) == 1:
        chosen_k = k_values[0]
        selection = f"fixed n_segments={chosen_k}"
    elif algorithm == "gmm":
        chosen_k = min(rows, key=lambda r: (r["bic"], r["k"]))["k"]
        selection = f"min BIC over k={k_values[0]}..{k_values[-1]}"
    else:
        chosen_k = consensus_k(rows)
        selection = (
            f"best rank sum of silhouette, Calinski-Harabasz and Davies-Bouldin over "
            f"k={k_values[0]}..{k_values[-1]}"
        )
    for row in rows:
        row["chosen"] = row["k"] == chosen_k
    return KSearch(
        k_scores=pl.DataFrame(rows, schema=SCORES_SCHEMA),
        chosen_k=chosen_k,
        selection=selection,
        estimator=fitted.get(chosen_k),
    )
