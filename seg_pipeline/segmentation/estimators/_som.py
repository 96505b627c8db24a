"""Self-organising map (MiniSom) whose nodes are grouped into segments, as an estimator."""

import numpy as np
from minisom import MiniSom
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import AgglomerativeClustering

from seg_pipeline.segmentation.estimators._base import (
    check_k,
    compact_labels,
    label_means,
    nearest_center,
    sample_indices,
    validate_fit_input,
    validate_predict_input,
)


class SOMSegmenter(ClusterMixin, BaseEstimator):
    """Self-organising map whose nodes are grouped into segments by Ward clustering.

    The map (``rows`` x ``cols`` nodes, :class:`minisom.MiniSom`) is trained on a seeded sample,
    initialised on the sample's principal components (given two features or more).  Node
    weight vectors are then grouped with Ward agglomerative clustering weighted by nothing but
    position in feature space; groups no fitted row maps to are merged into the nearest group
    that has rows.  A row's segment is the group of its best-matching unit (nearest node).

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
    n_features_in_ : int
        Features of the ``fit`` input (``predict`` needs as many).
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
        X = validate_fit_input(self, X)
        check_k(self.n_segments, X.shape[0])
        n_nodes = self.rows * self.cols
        if n_nodes <= self.n_segments:
            raise ValueError(
                f"a {self.rows}x{self.cols} map cannot be grouped into {self.n_segments} "
                "segments; make it larger"
            )
        idx = sample_indices(X.shape[0], self.max_fit_rows, self.random_state)
        sample = X[idx]
        som = MiniSom(
            self.rows,
            self.cols,
            X.shape[1],
            sigma=self.sigma,
            learning_rate=self.learning_rate,
            random_seed=self.random_state,
        )
        # Initialised on the principal components where there are two to take (MiniSom's PCA
        # initialisation needs two features and more rows than features); else MiniSom's seeded
        # random initialisation.
        if X.shape[1] >= 2 and sample.shape[0] > X.shape[1]:
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
            kept_centres = label_means(weights, groups, self.n_segments)[kept]
            orphan = ~np.isin(groups, kept)
            groups = groups.copy()
            groups[orphan] = kept[nearest_center(weights[orphan], kept_centres)]
        self.node_segments_, _ = compact_labels(groups)
        self.n_segments_ = int(self.node_segments_.max()) + 1
        self.noise_label_ = None
        self.quantization_error_ = float(
            np.linalg.norm(sample - weights[nearest_center(sample, weights)], axis=1).mean()
        )
        self.labels_ = self.node_segments_[bmu]
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Segment of each row's best-matching unit."""
        X = validate_predict_input(self, X)
        return self.node_segments_[nearest_center(X, self.weights_)]
