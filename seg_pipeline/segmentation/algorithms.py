"""Segmentation algorithms behind one entry point, :func:`fit_segmenter`, and the K choice.

Every algorithm is wrapped in a small scikit-learn-style estimator (parameters only in
``__init__``, ``fit`` returns ``self``, learned attributes end in ``_``) whose ``predict`` gives a
segment label ``0..n_segments_-1`` to *any* row, so a stored model can label each day's
customers.  The density methods (HDBSCAN, DBSCAN) put the points they call noise into a segment
of their own (the last label, ``noise_label_``) instead of ``-1``.

The input of every function here is the already preprocessed matrix (see
:mod:`seg_pipeline.segmentation.preprocess`).  Every random step is seeded from
``SegmentationConfig.seed``: the same matrix and config give identical labels.
"""

from dataclasses import dataclass

import numpy as np
import polars as pl
from minisom import MiniSom
from scipy.cluster.hierarchy import cut_tree
from scipy.cluster.hierarchy import ward as scipy_ward
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import DBSCAN, HDBSCAN, AgglomerativeClustering, KMeans, MiniBatchKMeans
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import threadpool_limits

from seg_pipeline.segmentation.config import SegmentationConfig

# Defaults used when the config leaves a density parameter open (``None``).
HDBSCAN_DEFAULT_MIN_SAMPLES = 5
"""HDBSCAN ``min_samples`` when ``density_min_samples`` is None (sklearn's own default, equal
to ``min_cluster_size``, calls about half of the generated month noise)."""
DBSCAN_MIN_SAMPLES_PER_FEATURE = 2
"""DBSCAN ``min_samples`` is this times the number of features when ``density_min_samples`` is
None (the usual 2 * dimensions rule)."""
DBSCAN_EPS_QUANTILE = 0.5
"""Quantile of the k-distance graph (k = ``min_samples``) taken as DBSCAN ``eps`` when
``dbscan_eps`` is None."""
GMM_COVARIANCE_TYPE = "full"
"""Covariance of the Gaussian mixture components."""
GMM_REG_COVAR = 1e-2
"""Added to the covariance diagonals: zero-inflated features otherwise give components of
near-zero variance that win on likelihood but not on meaning."""
GMM_N_INIT = 2
"""Restarts of the Gaussian mixture EM."""

_SCORES_SCHEMA = {
    "k": pl.Int64,
    "silhouette": pl.Float64,
    "calinski_harabasz": pl.Float64,
    "davies_bouldin": pl.Float64,
    "bic": pl.Float64,
    "inertia": pl.Float64,
    "chosen": pl.Boolean,
}
_CHUNK_ROWS = 65_536
# Fits on fewer rows run single-threaded (see fit_segmenter).
PARALLEL_MIN_ROWS = 100_000


# ---------------------------------------------------------------------------------------------
# Helpers


def _check_matrix(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"segmentation needs a 2-D matrix, got shape {X.shape}")
    if X.shape[1] == 0:
        raise ValueError("segmentation needs at least one feature column")
    if not np.isfinite(X).all():
        raise ValueError("segmentation matrix has NaN or infinite values; preprocess it first")
    return X


def _sample_indices(n_rows: int, size: int | None, seed: int) -> np.ndarray:
    """Sorted indices of a seeded sample of at most ``size`` of ``n_rows`` rows (all if fewer)."""
    if size is None or n_rows <= size:
        return np.arange(n_rows)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_rows, size=size, replace=False))


def nearest_center(X: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Index of the nearest row of ``centers`` (Euclidean) for every row of ``X``.

    Vectorised in chunks of rows, so millions of rows take seconds.

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
    centers : ndarray of shape (n_centers, n_features)

    Returns
    -------
    ndarray of shape (n_rows,), dtype int64
    """
    X = np.asarray(X, dtype=np.float64)
    centers = np.asarray(centers, dtype=np.float64)
    center_sq = (centers**2).sum(axis=1)
    out = np.empty(X.shape[0], dtype=np.int64)
    for start in range(0, X.shape[0], _CHUNK_ROWS):
        chunk = X[start : start + _CHUNK_ROWS]
        # |x - c|^2 without the |x|^2 term, which does not change the argmin.
        dist = center_sq[None, :] - 2.0 * (chunk @ centers.T)
        out[start : start + _CHUNK_ROWS] = np.argmin(dist, axis=1)
    return out


def _label_means(X: np.ndarray, labels: np.ndarray, n_labels: int) -> np.ndarray:
    """Mean row of each label (NaN for a label no row has)."""
    sums = np.zeros((n_labels, X.shape[1]))
    np.add.at(sums, labels, X)
    counts = np.bincount(labels, minlength=n_labels).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts[:, None]


def _compact(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels renumbered 0..m-1 in order of first value, and the old value of each new label."""
    used, compact = np.unique(labels, return_inverse=True)
    return compact.astype(np.int64), used


def _check_k(k: int, n_rows: int) -> None:
    if k < 2:
        raise ValueError(f"need at least 2 segments, got {k}")
    if n_rows <= k:
        raise ValueError(
            f"cannot make {k} segments from {n_rows} rows; need more rows than segments"
        )


def _scores(X: np.ndarray, labels: np.ndarray, seed: int, sample: int) -> dict[str, float | None]:
    """Silhouette, Calinski-Harabasz and Davies-Bouldin on a seeded sample (None if undefined)."""
    idx = _sample_indices(X.shape[0], sample, seed)
    Xs, ls = X[idx], labels[idx]
    n_labels = np.unique(ls).size
    if not 2 <= n_labels <= Xs.shape[0] - 1:
        return {"silhouette": None, "calinski_harabasz": None, "davies_bouldin": None}
    return {
        "silhouette": float(silhouette_score(Xs, ls)),
        "calinski_harabasz": float(calinski_harabasz_score(Xs, ls)),
        "davies_bouldin": float(davies_bouldin_score(Xs, ls)),
    }


# ---------------------------------------------------------------------------------------------
# Estimators


class KMeansSegmenter(ClusterMixin, BaseEstimator):
    """K-Means (or mini-batch K-Means for large inputs) on at most ``max_fit_rows`` rows.

    Parameters
    ----------
    n_segments : int
        Number of clusters.
    minibatch : bool
        Use :class:`~sklearn.cluster.MiniBatchKMeans` instead of :class:`~sklearn.cluster.KMeans`.
    n_init : int
        Restarts.
    max_fit_rows : int or None
        Fit on a seeded sample of at most this many rows; the rest are predicted.
    random_state : int
        Seed of the sample and the initialisation.

    Attributes
    ----------
    model_ : KMeans or MiniBatchKMeans
    cluster_centers_ : ndarray of shape (n_segments, n_features)
    labels_ : ndarray of shape (n_rows,)
        Label of every row passed to ``fit``.
    inertia_ : float
        Sum of squared distances of the fitted rows to their centre.
    n_segments_ : int
    noise_label_ : None
    """

    def __init__(
        self,
        n_segments: int = 6,
        minibatch: bool = False,
        n_init: int = 10,
        max_fit_rows: int | None = 200_000,
        random_state: int = 42,
    ) -> None:
        self.n_segments = n_segments
        self.minibatch = minibatch
        self.n_init = n_init
        self.max_fit_rows = max_fit_rows
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: None = None) -> "KMeansSegmenter":
        """Fit on (a sample of) ``X``; ``labels_`` covers every row of ``X``."""
        X = _check_matrix(X)
        _check_k(self.n_segments, X.shape[0])
        idx = _sample_indices(X.shape[0], self.max_fit_rows, self.random_state)
        if self.minibatch:
            model = MiniBatchKMeans(
                n_clusters=self.n_segments,
                n_init=self.n_init,
                random_state=self.random_state,
                batch_size=min(4096, idx.size),
            )
        else:
            model = KMeans(
                n_clusters=self.n_segments, n_init=self.n_init, random_state=self.random_state
            )
        model.fit(X[idx])
        self.model_ = model
        self.cluster_centers_ = model.cluster_centers_
        self.inertia_ = float(model.inertia_)
        self.n_segments_ = self.n_segments
        self.noise_label_ = None
        self.labels_ = self.predict(X)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Label of the nearest centre for every row."""
        return self.model_.predict(_check_matrix(X)).astype(np.int64)


class WardSegmenter(ClusterMixin, BaseEstimator):
    """Ward agglomerative clustering of a seeded sample; other rows go to the nearest centroid.

    Parameters
    ----------
    n_segments : int
        Number of clusters the hierarchy is cut into.
    sample_size : int
        Rows the hierarchy is built on (it needs memory quadratic in them).
    random_state : int
        Seed of the sample.

    Attributes
    ----------
    sample_indices_ : ndarray
        Rows of the ``fit`` input the hierarchy was built on.
    linkage_ : ndarray of shape (n_sample - 1, 4)
        SciPy linkage matrix of the sample (for a dendrogram).
    cluster_centers_ : ndarray of shape (n_segments, n_features)
        Mean of each cluster's sample rows.
    labels_ : ndarray of shape (n_rows,)
    n_segments_ : int
    noise_label_ : None
    """

    def __init__(
        self, n_segments: int = 6, sample_size: int = 5_000, random_state: int = 42
    ) -> None:
        self.n_segments = n_segments
        self.sample_size = sample_size
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: None = None) -> "WardSegmenter":
        """Build the hierarchy on the sample, cut it, assign every row of ``X``."""
        X = _check_matrix(X)
        idx = _sample_indices(X.shape[0], self.sample_size, self.random_state)
        _check_k(self.n_segments, idx.size)
        sample = X[idx]
        sample_labels = (
            AgglomerativeClustering(n_clusters=self.n_segments, linkage="ward")
            .fit(sample)
            .labels_.astype(np.int64)
        )
        self.sample_indices_ = idx
        self.linkage_ = scipy_ward(sample)
        self.cluster_centers_ = _label_means(sample, sample_labels, self.n_segments)
        self.n_segments_ = self.n_segments
        self.noise_label_ = None
        labels = self.predict(X)
        labels[idx] = sample_labels
        self.labels_ = labels
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Label of the nearest Ward cluster centroid for every row."""
        return nearest_center(_check_matrix(X), self.cluster_centers_)


class DensitySegmenter(ClusterMixin, BaseEstimator):
    """HDBSCAN or DBSCAN on a seeded sample, with noise as a segment of its own.

    Parameters
    ----------
    method : {"hdbscan", "dbscan"}
    min_cluster_size : int
        HDBSCAN's smallest cluster (unused by DBSCAN).
    min_samples : int or None
        Neighbourhood size of a core point, the point itself included.  ``None``:
        :data:`HDBSCAN_DEFAULT_MIN_SAMPLES` for HDBSCAN, :data:`DBSCAN_MIN_SAMPLES_PER_FEATURE`
        times the number of features for DBSCAN.
    eps : float or None
        DBSCAN radius; ``None`` takes the ``eps_quantile`` quantile of the distances of the
        sample's points to their ``min_samples``-th nearest neighbour.
    eps_quantile : float
    sample_size : int
        Rows the clustering is fitted on.
    random_state : int
        Seed of the sample.

    Attributes
    ----------
    n_segments_ : int
        Clusters found plus one for noise.
    noise_label_ : int
        Label of the noise segment (``n_segments_ - 1``).
    n_clusters_ : int
        Clusters found (without noise).
    min_samples_ : int
    eps_ : float or None
        DBSCAN radius used (None for HDBSCAN).
    reference_points_ : ndarray
        Clustered sample points new rows are matched to: DBSCAN's core points, HDBSCAN's
        non-noise points.
    reference_labels_ : ndarray
    reference_radius_ : ndarray
        A new row takes the label of its nearest reference point if it is at most this far
        from it (DBSCAN: ``eps``; HDBSCAN: that point's core distance), else the noise label.
    sample_indices_ : ndarray
    labels_ : ndarray of shape (n_rows,)
    """

    def __init__(
        self,
        method: str = "hdbscan",
        min_cluster_size: int = 25,
        min_samples: int | None = None,
        eps: float | None = None,
        eps_quantile: float = DBSCAN_EPS_QUANTILE,
        sample_size: int = 20_000,
        random_state: int = 42,
    ) -> None:
        self.method = method
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.eps = eps
        self.eps_quantile = eps_quantile
        self.sample_size = sample_size
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: None = None) -> "DensitySegmenter":
        """Cluster the sample, then label every row of ``X`` (sample rows keep their label)."""
        if self.method not in ("hdbscan", "dbscan"):
            raise ValueError(f"method must be 'hdbscan' or 'dbscan', got {self.method!r}")
        X = _check_matrix(X)
        idx = _sample_indices(X.shape[0], self.sample_size, self.random_state)
        sample = X[idx]
        if self.min_samples is not None:
            min_samples = self.min_samples
        elif self.method == "hdbscan":
            min_samples = HDBSCAN_DEFAULT_MIN_SAMPLES
        else:
            min_samples = DBSCAN_MIN_SAMPLES_PER_FEATURE * X.shape[1]
        needed = max(min_samples, self.min_cluster_size if self.method == "hdbscan" else 2)
        if sample.shape[0] <= needed:
            raise ValueError(
                f"{self.method} needs more than {needed} rows "
                f"(min_samples={min_samples}), got {sample.shape[0]}"
            )
        # Distance of each sample point to its min_samples-th neighbour, itself included: the
        # core distance of both HDBSCAN and DBSCAN.
        core_dist = (
            NearestNeighbors(n_neighbors=min_samples).fit(sample).kneighbors(sample)[0][:, -1]
        )
        if self.method == "dbscan":
            eps = (
                float(self.eps)
                if self.eps is not None
                else float(np.quantile(core_dist, self.eps_quantile))
            )
            if eps <= 0:
                raise ValueError("DBSCAN eps came out as 0 (duplicated rows?); set dbscan_eps")
            model = DBSCAN(eps=eps, min_samples=min_samples).fit(sample)
            raw = model.labels_
            ref = np.zeros(sample.shape[0], dtype=bool)
            ref[model.core_sample_indices_] = True
            radius = np.full(int(ref.sum()), eps)
            self.eps_ = eps
        else:
            model = HDBSCAN(
                min_cluster_size=self.min_cluster_size, min_samples=min_samples, copy=True
            ).fit(sample)
            raw = model.labels_
            ref = raw >= 0
            radius = core_dist[ref]
            self.eps_ = None
        n_clusters = int(raw.max()) + 1 if (raw >= 0).any() else 0
        if n_clusters == 0:
            raise ValueError(
                f"{self.method} called every one of {sample.shape[0]} rows noise; lower "
                "density_min_cluster_size / density_min_samples or raise dbscan_eps"
            )
        sample_labels = np.where(raw >= 0, raw, n_clusters).astype(np.int64)
        self.model_ = model
        self.min_samples_ = min_samples
        self.n_clusters_ = n_clusters
        self.n_segments_ = n_clusters + 1
        self.noise_label_ = n_clusters
        self.sample_indices_ = idx
        self.reference_points_ = sample[ref]
        self.reference_labels_ = sample_labels[ref]
        self.reference_radius_ = radius
        self._neighbours = NearestNeighbors(n_neighbors=1).fit(self.reference_points_)
        labels = self.predict(X)
        labels[idx] = sample_labels
        self.labels_ = labels
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Label of the nearest reference point if within its radius, else the noise label."""
        X = _check_matrix(X)
        dist, nearest = self._neighbours.kneighbors(X)
        dist, nearest = dist[:, 0], nearest[:, 0]
        inside = dist <= self.reference_radius_[nearest]
        return np.where(inside, self.reference_labels_[nearest], self.noise_label_).astype(np.int64)


class GMMSegmenter(ClusterMixin, BaseEstimator):
    """Gaussian mixture; each row goes to its most probable component.

    Components no fitted row falls into are dropped (their probability is ignored by
    ``predict``), so labels are always ``0..n_segments_-1``.

    Parameters
    ----------
    n_segments : int
        Number of mixture components.
    covariance_type : str
        See :class:`~sklearn.mixture.GaussianMixture`.
    reg_covar : float
        Added to the covariance diagonals.
    n_init : int
        EM restarts.
    max_fit_rows : int or None
        Fit on a seeded sample of at most this many rows.
    random_state : int

    Attributes
    ----------
    model_ : GaussianMixture
    components_ : ndarray
        Mixture components kept, in label order.
    bic_ : float
        BIC of the model on the fitted rows.
    n_segments_ : int
    noise_label_ : None
    labels_ : ndarray of shape (n_rows,)
    """

    def __init__(
        self,
        n_segments: int = 6,
        covariance_type: str = GMM_COVARIANCE_TYPE,
        reg_covar: float = GMM_REG_COVAR,
        n_init: int = GMM_N_INIT,
        max_fit_rows: int | None = 200_000,
        random_state: int = 42,
    ) -> None:
        self.n_segments = n_segments
        self.covariance_type = covariance_type
        self.reg_covar = reg_covar
        self.n_init = n_init
        self.max_fit_rows = max_fit_rows
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: None = None) -> "GMMSegmenter":
        """Fit the mixture on (a sample of) ``X``; ``labels_`` covers every row."""
        X = _check_matrix(X)
        _check_k(self.n_segments, X.shape[0])
        idx = _sample_indices(X.shape[0], self.max_fit_rows, self.random_state)
        model = GaussianMixture(
            n_components=self.n_segments,
            covariance_type=self.covariance_type,
            reg_covar=self.reg_covar,
            n_init=self.n_init,
            random_state=self.random_state,
        ).fit(X[idx])
        self.model_ = model
        self.bic_ = float(model.bic(X[idx]))
        self.components_ = np.unique(model.predict(X))
        self.n_segments_ = int(self.components_.size)
        self.noise_label_ = None
        self.labels_ = self.predict(X)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Most probable kept component of every row."""
        proba = self.model_.predict_proba(_check_matrix(X))[:, self.components_]
        return np.argmax(proba, axis=1).astype(np.int64)


class SOMSegmenter(ClusterMixin, BaseEstimator):
    """Self-organising map whose nodes are grouped into segments by Ward clustering.

    The map (``rows`` x ``cols`` nodes, :class:`minisom.MiniSom`) is trained on a seeded sample,
    initialised on the sample's principal components.  Node weight vectors are then grouped
    with Ward agglomerative clustering weighted by nothing but position in feature space;
    groups no fitted row maps to are merged into the nearest group that has rows.  A row's
    segment is the group of its best-matching unit (nearest node).

    Parameters
    ----------
    n_segments : int
    rows, cols : int
        Map grid.
    sigma, learning_rate : float
        Initial neighbourhood radius and learning rate.
    n_iterations : int
        Training steps (one random row each).
    max_fit_rows : int or None
        Train on a seeded sample of at most this many rows.
    random_state : int

    Attributes
    ----------
    weights_ : ndarray of shape (rows * cols, n_features)
        Node weight vectors, row-major over the grid.
    node_segments_ : ndarray of shape (rows * cols,)
        Segment of each node.
    node_hits_ : ndarray of shape (rows * cols,)
        Rows of the ``fit`` input mapped to each node.
    quantization_error_ : float
        Mean distance of the fitted rows to their best-matching unit.
    n_segments_ : int
    noise_label_ : None
    labels_ : ndarray of shape (n_rows,)
    """

    def __init__(
        self,
        n_segments: int = 6,
        rows: int = 8,
        cols: int = 8,
        sigma: float = 1.5,
        learning_rate: float = 0.5,
        n_iterations: int = 5_000,
        max_fit_rows: int | None = 200_000,
        random_state: int = 42,
    ) -> None:
        self.n_segments = n_segments
        self.rows = rows
        self.cols = cols
        self.sigma = sigma
        self.learning_rate = learning_rate
        self.n_iterations = n_iterations
        self.max_fit_rows = max_fit_rows
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: None = None) -> "SOMSegmenter":
        """Train the map on (a sample of) ``X``, group its nodes, label every row."""
        X = _check_matrix(X)
        _check_k(self.n_segments, X.shape[0])
        n_nodes = self.rows * self.cols
        if n_nodes <= self.n_segments:
            raise ValueError(
                f"a {self.rows}x{self.cols} map cannot be grouped into {self.n_segments} "
                "segments; make it larger"
            )
        idx = _sample_indices(X.shape[0], self.max_fit_rows, self.random_state)
        sample = X[idx]
        som = MiniSom(
            self.rows,
            self.cols,
            X.shape[1],
            sigma=self.sigma,
            learning_rate=self.learning_rate,
            random_seed=self.random_state,
        )
        if sample.shape[0] > X.shape[1]:
            som.pca_weights_init(sample)
        som.train(sample, self.n_iterations, random_order=True)
        weights = som.get_weights().reshape(n_nodes, X.shape[1]).copy()
        self.weights_ = weights
        bmu = nearest_center(X, weights)
        self.node_hits_ = np.bincount(bmu, minlength=n_nodes)
        groups = (
            AgglomerativeClustering(n_clusters=self.n_segments, linkage="ward").fit(weights).labels_
        )
        # Groups nobody maps to would be empty segments: give their nodes to the nearest group
        # that has rows.
        group_hits = np.bincount(groups, weights=self.node_hits_, minlength=self.n_segments)
        kept = np.flatnonzero(group_hits > 0)
        if kept.size < self.n_segments:
            kept_centres = _label_means(weights, groups, self.n_segments)[kept]
            orphan = ~np.isin(groups, kept)
            groups = groups.copy()
            groups[orphan] = kept[nearest_center(weights[orphan], kept_centres)]
        self.node_segments_, _ = _compact(groups)
        self.n_segments_ = int(self.node_segments_.max()) + 1
        self.noise_label_ = None
        self.quantization_error_ = float(
            np.linalg.norm(sample - weights[nearest_center(sample, weights)], axis=1).mean()
        )
        self.labels_ = self.node_segments_[bmu]
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Segment of each row's best-matching unit."""
        return self.node_segments_[nearest_center(_check_matrix(X), self.weights_)]


# ---------------------------------------------------------------------------------------------
# Entry point


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


def _k_estimator(algorithm: str, k: int, config: SegmentationConfig) -> BaseEstimator:
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


def _ward_cut_labels(X: np.ndarray, k_values: list[int], config: SegmentationConfig) -> dict:
    """Labels of every row of ``X`` for each k, cutting one Ward hierarchy of the sample."""
    idx = _sample_indices(X.shape[0], config.ward_sample, config.seed)
    sample = X[idx]
    cuts = cut_tree(scipy_ward(sample), n_clusters=k_values)
    out = {}
    for j, k in enumerate(k_values):
        sample_labels = cuts[:, j].astype(np.int64)
        labels = nearest_center(X, _label_means(sample, sample_labels, k))
        labels[idx] = sample_labels
        out[k] = labels
    return out


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


def _fit_k_based(X: np.ndarray, config: SegmentationConfig) -> SegmenterFit:
    algorithm = config.algorithm
    n_rows = X.shape[0]
    if config.n_segments is not None:
        k_values = [config.n_segments]
    else:
        k_values = list(range(config.k_min, config.k_max + 1))
    limit = config.ward_sample if algorithm == "ward" else n_rows
    _check_k(max(k_values), min(n_rows, limit))

    rows = []
    fitted: dict[int, BaseEstimator] = {}
    # Candidate K are fitted and scored on one seeded sample of score_sample rows (the chosen K
    # is then fitted on every training row): the search costs the same at any size.
    search = X[_sample_indices(n_rows, config.score_sample, config.seed)]
    if len(k_values) == 1:
        search = X
    ward_labels = (
        _ward_cut_labels(search, k_values, config)
        if algorithm == "ward" and len(k_values) > 1
        else {}
    )
    for k in k_values:
        if k in ward_labels:
            labels, estimator = ward_labels[k], None
        else:
            estimator = _k_estimator(algorithm, k, config).fit(search)
            labels = estimator.labels_
            if search is X:
                fitted[k] = estimator
        row = {"k": k, **_scores(search, labels, config.seed, config.score_sample)}
        row["bic"] = estimator.bic_ if isinstance(estimator, GMMSegmenter) else None
        row["inertia"] = estimator.inertia_ if isinstance(estimator, KMeansSegmenter) else None
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

    estimator = fitted.get(chosen_k) or _k_estimator(algorithm, chosen_k, config).fit(X)
    labels = estimator.labels_
    n_segments = int(estimator.n_segments_)
    if n_segments != chosen_k:
        selection += f" ({chosen_k - n_segments} empty component(s) dropped)"
    return SegmenterFit(
        estimator=estimator,
        n_segments=n_segments,
        noise_label=None,
        k_scores=pl.DataFrame(rows, schema=_SCORES_SCHEMA),
        chosen_k=chosen_k,
        selection=selection,
        centroids=_label_means(X, labels, n_segments),
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
        **_scores(X[clustered], labels[clustered], config.seed, config.score_sample),
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
        k_scores=pl.DataFrame([row], schema=_SCORES_SCHEMA),
        chosen_k=estimator.n_segments_,
        selection=selection,
        centroids=_label_means(X, labels, estimator.n_segments_),
        train_labels=labels,
        linkage=None,
    )


def fit_segmenter(X: np.ndarray, config: SegmentationConfig) -> SegmenterFit:
    """Fit ``config.algorithm`` to the preprocessed matrix ``X``, choosing K if not fixed.

    K-based algorithms (kmeans, minibatch_kmeans, ward, gmm, som) take ``config.n_segments``
    if set; otherwise every K in ``k_min..k_max`` is fitted and scored on a seeded sample of
    ``score_sample`` rows (silhouette, Calinski-Harabasz, Davies-Bouldin, inertia for K-Means,
    BIC for the mixture), the K the three indices agree on best is kept (:func:`consensus_k`;
    minimal BIC for gmm) and fitted on every row.  Ward K candidates are cuts of one
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
    X = _check_matrix(X)
    # scikit-learn's OpenMP threads spin-wait for each other: on small matrices, or on a
    # machine whose cores are busy, K-Means then runs ~100x slower (measured: 2.2 s instead of
    # 0.02 s for 7,500 x 6 rows with another process running); one thread below
    # PARALLEL_MIN_ROWS.
    threads = None if X.shape[0] >= PARALLEL_MIN_ROWS else 1
    with threadpool_limits(limits=threads):
        if config.algorithm in ("hdbscan", "dbscan"):
            return _fit_density(X, config)
        return _fit_k_based(X, config)
