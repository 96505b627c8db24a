"""Ward agglomerative clustering of a sample as a segmentation estimator, and the cuts of one
Ward hierarchy at several K (the K search of :mod:`seg_pipeline.segmentation.k_selection`)."""

import numpy as np
from scipy.cluster.hierarchy import cut_tree
from scipy.cluster.hierarchy import ward as scipy_ward
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import AgglomerativeClustering

from seg_pipeline.segmentation.estimators._base import (
    check_k,
    label_means,
    nearest_center,
    sample_indices,
    validate_fit_input,
    validate_predict_input,
)


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
    n_features_in_ : int
        Features of the ``fit`` input (``predict`` needs as many).
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
        X = validate_fit_input(self, X)
        idx = sample_indices(X.shape[0], self.sample_size, self.random_state)
        check_k(self.n_segments, idx.size)
        sample = X[idx]
        sample_labels = (
            AgglomerativeClustering(n_clusters=self.n_segments, linkage="ward")
            .fit(sample)
            .labels_.astype(np.int64)
        )
        self.sample_indices_ = idx
        self.linkage_ = scipy_ward(sample)
        self.cluster_centers_ = label_means(sample, sample_labels, self.n_segments)
        self.n_segments_ = self.n_segments
        self.noise_label_ = None
        labels = self.predict(X)
        labels[idx] = sample_labels
        self.labels_ = labels
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Label of the nearest Ward cluster centroid for every row."""
        return nearest_center(validate_predict_input(self, X), self.cluster_centers_)


def ward_cut_labels(
    X: np.ndarray, k_values: list[int], sample_size: int, seed: int
) -> dict[int, np.ndarray]:
    """Labels of every row of ``X`` for each k, cutting one Ward hierarchy of a seeded sample of
    ``sample_size`` rows (other rows go to the nearest cluster centroid, as
    :class:`WardSegmenter` does)."""
    idx = sample_indices(X.shape[0], sample_size, seed)
    sample = X[idx]
    cuts = cut_tree(scipy_ward(sample), n_clusters=k_values)
    out = {}
    for j, k in enumerate(k_values):
        sample_labels = cuts[:, j].astype(np.int64)
        labels = nearest_center(X, label_means(sample, sample_labels, k))
        labels[idx] = sample_labels
        out[k] = labels
    return out
