"""HDBSCAN and DBSCAN as a segmentation estimator: noise is a segment of its own."""

from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import DBSCAN, HDBSCAN
from sklearn.neighbors import NearestNeighbors

from seg_pipeline.segmentation.estimators._base import (
    sample_indices,
    validate_fit_input,
    validate_predict_input,
)

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


class DensitySegmenter(ClusterMixin, BaseEstimator):
    """HDBSCAN or DBSCAN on a seeded sample, with noise as a segment of its own.

    A saved model keeps the reference points (the clustered sample rows ``predict`` needs:
    preprocessed feature rows of customers, never an id) and leaves out ``NOT_SAVED``: the
    fitted scikit-learn clusterer (it holds a copy of the whole sample), the sample's
    indices and the labels of the training rows.

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
    n_features_in_ : int
        Features of the ``fit`` input (``predict`` needs as many).
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

    NOT_SAVED: ClassVar[tuple[str, ...]] = ("model_", "sample_indices_", "labels_")

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
        X = validate_fit_input(self, X)
        idx = sample_indices(X.shape[0], self.sample_size, self.random_state)
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
        labels = self.predict(X)
        labels[idx] = sample_labels
        self.labels_ = labels
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Label of the nearest reference point if within its radius, else the noise label."""
        X = validate_predict_input(self, X)
        dist, nearest = self._nearest_reference().kneighbors(X)
        dist, nearest = dist[:, 0], nearest[:, 0]
        inside = dist <= self.reference_radius_[nearest]
        return np.where(inside, self.reference_labels_[nearest], self.noise_label_).astype(np.int64)

    def _nearest_reference(self) -> NearestNeighbors:
        """The neighbour index of the reference points (built on first use: a model loaded from
        the store has the points, not the index)."""
        if getattr(self, "_neighbours", None) is None:
            self._neighbours = NearestNeighbors(n_neighbors=1).fit(self.reference_points_)
        return self._neighbours

    def drop_reference_points(self, rows: np.ndarray) -> None:
        """Forget the reference points where ``rows`` (a boolean mask) is true: an erased
        customer's training rows (``seg_pipeline.segmentation.model.erase_training_rows``)."""
        keep = ~np.asarray(rows, dtype=bool)
        self.reference_points_ = self.reference_points_[keep]
        self.reference_labels_ = self.reference_labels_[keep]
        self.reference_radius_ = self.reference_radius_[keep]
        self._neighbours = None
