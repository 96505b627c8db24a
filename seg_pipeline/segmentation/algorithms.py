"""Segmentation algorithms behind one entry point, :func:`fit_segmenter`.

The estimators live in :mod:`seg_pipeline.segmentation.estimators` (one module per family) and
the choice of K in :mod:`seg_pipeline.segmentation.k_selection`; this module maps a
configuration to an estimator, runs the K search or the density clustering, and returns the
fitted model with what was learned choosing it (:class:`SegmenterFit`).

The input of every function here is the already preprocessed matrix (see
:mod:`seg_pipeline.segmentation.preprocess`).  Every random step is seeded from
``SegmentationConfig.seed``: the same matrix and config give identical labels.
"""

from dataclasses import dataclass

import numpy as np
import polars as pl
from sklearn.base import BaseEstimator
from threadpoolctl import threadpool_limits

from seg_pipeline.segmentation.config import SegmentationConfig
from seg_pipeline.segmentation.estimators import (
    DensitySegmenter,
    GMMSegmenter,
    KMeansSegmenter,
    SOMSegmenter,
    WardSegmenter,
    nearest_center,
)
from seg_pipeline.segmentation.estimators._base import check_matrix, label_means
from seg_pipeline.segmentation.k_selection import (
    SCORES_SCHEMA,
    consensus_k,
    internal_scores,
    search_k,
)

# The estimators stay importable from here: stored models pickled before the split name them
# as ``seg_pipeline.segmentation.algorithms.<class>``.
__all__ = [
    "PARALLEL_MIN_ROWS",
    "DensitySegmenter",
    "GMMSegmenter",
    "KMeansSegmenter",
    "SOMSegmenter",
    "SegmenterFit",
    "WardSegmenter",
    "consensus_k",
    "fit_segmenter",
    "make_estimator",
    "nearest_center",
]

# Fits on fewer rows run single-threaded (see fit_segmenter).
PARALLEL_MIN_ROWS = 100_000


@dataclass
class SegmenterFit:
    """A fitted segmentation model with what was learned choosing it.

    Attributes
    ----------
    estimator
        Fitted estimator; ``predict(X)`` labels any preprocessed rows ``0..n_segments-1``.
    n_segments
        Number of segments, the noise segment included.
    noise_label
        Label of the noise segment (HDBSCAN, DBSCAN), else None.
    k_scores
        One row per candidate K: ``k``, ``silhouette``, ``calinski_harabasz``,
        ``davies_bouldin``, ``bic`` (GMM only), ``inertia`` (K-Means only), ``chosen``.
        Density methods have one row describing the clustering found, ``k`` counting the noise
        segment and the scores computed on the non-noise rows.
    chosen_k
        K of the chosen row.
    selection
        The rule that chose it, in words.
    centroids
        Mean preprocessed row of each segment (noise: mean of the noise rows).
    train_labels
        Segment of each row of the training matrix.
    linkage
        SciPy linkage matrix of the Ward sample (``ward`` only).
    """

    estimator: BaseEstimator
    n_segments: int
    noise_label: int | None
    k_scores: pl.DataFrame
    chosen_k: int
    selection: str
    centroids: np.ndarray
    train_labels: np.ndarray
    linkage: np.ndarray | None = None


def make_estimator(algorithm: str, k: int, config: SegmentationConfig) -> BaseEstimator:
    """The unfitted estimator of a K-based ``algorithm`` with ``k`` segments and ``config``'s
    settings."""
    if algorithm in ("kmeans", "minibatch_kmeans"):
        return KMeansSegmenter(
            n_segments=k,
            minibatch=algorithm == "minibatch_kmeans",
            n_init=config.kmeans_n_init,
            max_fit_rows=config.max_fit_rows,
            random_state=config.seed,
        )
    if algorithm == "ward":
        return WardSegmenter(n_segments=k, sample_size=config.ward_sample, random_state=config.seed)
    if algorithm == "gmm":
        return GMMSegmenter(
            n_segments=k, max_fit_rows=config.max_fit_rows, random_state=config.seed
        )
    if algorithm == "som":
        return SOMSegmenter(
            n_segments=k,
            rows=config.som_rows,
            cols=config.som_cols,
            sigma=config.som_sigma,
            learning_rate=config.som_learning_rate,
            n_iterations=config.som_iterations,
            max_fit_rows=config.max_fit_rows,
            random_state=config.seed,
        )
    raise ValueError(f"{algorithm!r} does not take a number of segments")


def _fit_k_based(X: np.ndarray, config: SegmentationConfig) -> SegmenterFit:
    search = search_k(X, config, make_estimator)
    chosen_k = search.chosen_k
    estimator = search.estimator
    if estimator is None:
        estimator = make_estimator(config.algorithm, chosen_k, config).fit(X)
    labels = estimator.labels_
    n_segments = int(estimator.n_segments_)
    selection = search.selection
    if n_segments != chosen_k:
        selection += f" ({chosen_k - n_segments} empty component(s) dropped)"
    return SegmenterFit(
        estimator=estimator,
        n_segments=n_segments,
        noise_label=None,
        k_scores=search.k_scores,
        chosen_k=chosen_k,
        selection=selection,
        centroids=label_means(X, labels, n_segments),
        train_labels=labels,
        linkage=getattr(estimator, "linkage_", None),
    )


def _fit_density(X: np.ndarray, config: SegmentationConfig) -> SegmenterFit:
    estimator = DensitySegmenter(
        method=config.algorithm,
        min_cluster_size=config.density_min_cluster_size,
        min_samples=config.density_min_samples,
        eps=config.dbscan_eps,
        sample_size=config.density_sample,
        random_state=config.seed,
    ).fit(X)
    labels = estimator.labels_
    clustered = labels != estimator.noise_label_
    row = {
        "k": estimator.n_segments_,
        **internal_scores(X[clustered], labels[clustered], config.seed, config.score_sample),
        "bic": None,
        "inertia": None,
        "chosen": True,
    }
    noise_share = 1.0 - float(clustered.mean())
    detail = f"min_samples={estimator.min_samples_}"
    if estimator.eps_ is not None:
        detail += f", eps={estimator.eps_:.4g}"
    else:
        detail = f"min_cluster_size={config.density_min_cluster_size}, " + detail
    selection = (
        f"found by {config.algorithm.upper()} ({detail}): {estimator.n_clusters_} clusters "
        f"+ noise segment ({noise_share:.1%} of rows)"
    )
    return SegmenterFit(
        estimator=estimator,
        n_segments=estimator.n_segments_,
        noise_label=estimator.noise_label_,
        k_scores=pl.DataFrame([row], schema=SCORES_SCHEMA),
        chosen_k=estimator.n_segments_,
        selection=selection,
        centroids=label_means(X, labels, estimator.n_segments_),
        train_labels=labels,
        linkage=None,
    )


def fit_segmenter(X: np.ndarray, config: SegmentationConfig) -> SegmenterFit:
    """Fit ``config.algorithm`` to the preprocessed matrix ``X``, choosing K if not fixed.

    K-based algorithms (kmeans, minibatch_kmeans, ward, gmm, som) take ``config.n_segments``
    if set; otherwise every K in ``k_min..k_max`` is fitted and scored on a seeded sample of
    ``score_sample`` rows (silhouette, Calinski-Harabasz, Davies-Bouldin, inertia for K-Means,
    BIC for the mixture), the K the three indices agree on best is kept (:func:`consensus_k`;
    minimal BIC for gmm) and fitted on every row; see
    :func:`seg_pipeline.segmentation.k_selection.search_k`.  Ward K candidates are cuts of one
    hierarchy.  HDBSCAN and DBSCAN find their own number of clusters; their noise rows form
    one more segment.

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
        Preprocessed rows, finite.
    config : SegmentationConfig

    Returns
    -------
    SegmenterFit

    Raises
    ------
    ValueError
        If ``X`` is not a finite 2-D matrix, has no more rows than the largest K tried, or a
        density method finds no cluster at all.
    """
    X = check_matrix(X)
    # scikit-learn's OpenMP threads spin-wait for each other: on small matrices, or on a
    # machine whose cores are busy, K-Means then runs ~100x slower (measured: 2.2 s instead of
    # 0.02 s for 7,500 x 6 rows with another process running); one thread below
    # PARALLEL_MIN_ROWS.
    threads = None if X.shape[0] >= PARALLEL_MIN_ROWS else 1
    with threadpool_limits(limits=threads):
        if config.algorithm in ("hdbscan", "dbscan"):
            return _fit_density(X, config)
        return _fit_k_based(X, config)
