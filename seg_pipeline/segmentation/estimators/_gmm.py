"""Gaussian mixture as a segmentation estimator."""

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.mixture import GaussianMixture

from seg_pipeline.segmentation.estimators._base import (
    check_k,
    sample_indices,
    validate_fit_input,
    validate_predict_input,
)

GMM_COVARIANCE_TYPE = "full"
"""Covariance of the Gaussian mixture components."""
GMM_REG_COVAR = 1e-2
"""Added to the covariance diagonals: zero-inflated features otherwise give components of
near-zero variance that win on likelihood but not on meaning."""
GMM_N_INIT = 2
"""Restarts of the Gaussian mixture EM."""


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
    n_features_in_ : int
        Features of the ``fit`` input (``predict`` needs as many).
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
        X = validate_fit_input(self, X)
        check_k(self.n_segments, X.shape[0])
        idx = sample_indices(X.shape[0], self.max_fit_rows, self.random_state)
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
        X = validate_predict_input(self, X)
        proba = self.model_.predict_proba(X)[:, self.components_]
        return np.argmax(proba, axis=1).astype(np.int64)
