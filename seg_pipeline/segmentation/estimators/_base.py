"""What the segmentation estimators share: input validation, seeded samples, nearest centres."""

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted, validate_data

CHUNK_ROWS = 65_536
"""Rows per block of :func:`nearest_center` (bounds its memory at any input size)."""


def check_matrix(X: np.ndarray) -> np.ndarray:
    """``X`` as a float64 matrix, or a ValueError saying what is wrong with it in our terms."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"segmentation needs a 2-D matrix, got shape {X.shape}")
    if X.shape[1] == 0:
        raise ValueError("segmentation needs at least one feature column")
    if not np.isfinite(X).all():
        raise ValueError("segmentation matrix has NaN or infinite values; preprocess it first")
    return X


def validate_fit_input(estimator: BaseEstimator, X: np.ndarray) -> np.ndarray:
    """``X`` checked as scikit-learn checks a ``fit`` input (dense, real, finite, 2-D, at least
    two rows and one feature), as float64; sets ``estimator.n_features_in_``."""
    return validate_data(estimator, X, dtype=np.float64, ensure_min_samples=2)


def validate_predict_input(estimator: BaseEstimator, X: np.ndarray) -> np.ndarray:
    """``X`` checked for ``predict``: the estimator is fitted (else ``NotFittedError``) and ``X``
    is a finite float64 matrix with the features it was fitted on."""
    check_is_fitted(estimator)
    return validate_data(estimator, X, dtype=np.float64, reset=False)


def sample_indices(n_rows: int, size: int | None, seed: int) -> np.ndarray:
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
    for start in range(0, X.shape[0], CHUNK_ROWS):
        chunk = X[start : start + CHUNK_ROWS]
        # |x - c|^2 without the |x|^2 term, which does not change the argmin.
        dist = center_sq[None, :] - 2.0 * (chunk @ centers.T)
        out[start : start + CHUNK_ROWS] = np.argmin(dist, axis=1)
    return out


def label_means(X: np.ndarray, labels: np.ndarray, n_labels: int) -> np.ndarray:
    """Mean row of each label (NaN for a label no row has)."""
    sums = np.zeros((n_labels, X.shape[1]))
    np.add.at(sums, labels, X)
    counts = np.bincount(labels, minlength=n_labels).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts[:, None]


def compact_labels(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels renumbered 0..m-1 in order of first value, and the old value of each new label."""
    used, compact = np.unique(labels, return_inverse=True)
    return compact.astype(np.int64), used


def check_k(k: int, n_rows: int) -> None:
    """ValueError unless ``k`` segments can be made from ``n_rows`` rows."""
    if k < 2:
        raise ValueError(f"need at least 2 segments, got {k}")
    if n_rows <= k:
        raise ValueError(
            f"cannot make {k} segments from {n_rows} rows; need more rows than segments"
        )
