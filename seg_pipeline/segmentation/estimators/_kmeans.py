"""K-Means and mini-batch K-Means as a segmentation estimator."""

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import KMeans, MiniBatchKMeans

from seg_pipeline.segmentation.estimators._base import (
    check_k,
    sample_indices,
    validate_fit_input,
    validate_predict_input,
)


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
    n_features_in_ : int
        Features of the ``fit`` input (``predict`` needs as many).
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
        X = validate_fit_input(self, X)
        check_k(self.n_segments, X.shape[0])
        idx = sample_indices(X.shape[0], self.max_fit_rows, self.random_state)
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
        X = validate_predict_input(self, X)
        return self.model_.predict(X).astype(np.int64)
