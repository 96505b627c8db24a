"""What the segmentation uses and how it fits: one frozen settings object, defaults in code.

The Dagster assets take the same fields as run config (:class:`SegmentationRunConfig` in
``assets.py``), so a run from the UI or the CLI can change any of them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

Algorithm = Literal["kmeans", "minibatch_kmeans", "ward", "hdbscan", "dbscan", "gmm", "som"]
ALGORITHMS: tuple[str, ...] = (
    "kmeans",
    "minibatch_kmeans",
    "ward",
    "hdbscan",
    "dbscan",
    "gmm",
    "som",
)

# The default features: one column per behaviour the business segments on, so no behaviour is
# counted twice (sessions, product views and add-to-carts all measure browsing; only sessions
# is used).  All are columns of customer_features.
DEFAULT_FEATURES: tuple[str, ...] = (
    "tenure_days",  # how long the customer has been with us
    "count_orders",  # frequency
    "avg_order_value",  # monetary, per order
    "discount_share",  # price sensitivity
    "count_sessions_30d",  # web engagement
    "campaign_open_rate",  # marketing responsiveness
)

# Skewed counts, days and money: log1p before scaling.
DEFAULT_LOG_FEATURES: tuple[str, ...] = (
    "tenure_days",
    "recency_days",
    "count_orders",
    "count_repeat_orders",
    "count_orders_placed",
    "count_items",
    "lifetime_spend",
    "avg_order_value",
    "max_order_value",
    "purchase_rate_per_month",
    "avg_spend_per_month",
    "avg_days_between_orders",
    "count_sessions_30d",
    "count_sessions_90d",
    "count_product_views_30d",
    "count_product_views_90d",
    "count_searches_30d",
    "count_searches_90d",
    "count_add_to_cart_30d",
    "count_add_to_cart_90d",
    "count_campaigns_received",
    "count_reviews",
)

# Nulls mean "no denominator" (no order, no send, no review): counts and shares of nothing are
# 0, per-order and per-send averages take the median (the customer is not known to differ),
# recency without an order is the whole observed time.
DEFAULT_ZERO_FILL: tuple[str, ...] = ("return_rate", "cancel_rate", "share_orders_discounted")


@dataclass(frozen=True)
class SegmentationConfig:
    """Settings of the segmentation model.

    Parameters
    ----------
    features
        customer_features columns the model uses, in order.
    log_features
        Those of them transformed with log1p (counts, days, money).
    zero_fill
        Those whose nulls become 0; other nulls take the training median, except
        ``recency_days`` which takes ``observed_days``.
    algorithm
        One of :data:`ALGORITHMS`; ``kmeans`` by default.
    n_segments
        Fixed number of segments; ``None`` chooses it over ``k_min..k_max``.
    k_min, k_max
        Range searched for the number of segments.
    pca_components
        Optional PCA after scaling (``None``: no PCA).
    scaler_quantile_range
        Quantile range of the robust scaler (10-90 keeps zero-heavy shares from being blown up
        by a zero inter-quartile range).
    seed
        Seed of every random step (sampling, initialisation).
    window_days
        Rolling fit window: the model is fitted on customer_features rows of the last this many
        days (sampled).
    max_fit_rows
        Most rows the model is fitted on (sampled from the window).
    score_sample
        Rows the silhouette score of each candidate K is computed on.
    max_model_age_days
        A model older than this is refitted by the next daily run.
    ward_sample
        Rows the Ward hierarchy is built on (the rest are assigned to the nearest centroid).
    density_min_cluster_size, density_min_samples, dbscan_eps, density_sample
        HDBSCAN / DBSCAN parameters; ``dbscan_eps`` ``None`` takes it from the k-distance
        quantile.  Points they call noise form their own segment.
    som_rows, som_cols, som_iterations, som_sigma, som_learning_rate
        Self-organising map grid and training; its nodes are grouped into segments.
    kmeans_n_init
        Restarts of K-Means.
    min_match_jaccard
        Shared-member overlap (Jaccard) below which a refitted segment is new, not a
        continuation of an old one.
    keep_name_jaccard
        Overlap from which a continued segment also keeps its name; a weaker continuation
        keeps its id but is renamed from its current profile (early models, fitted on little
        history, name segments that later settle).
    """

    features: tuple[str, ...] = DEFAULT_FEATURES
    log_features: tuple[str, ...] = DEFAULT_LOG_FEATURES
    zero_fill: tuple[str, ...] = DEFAULT_ZERO_FILL
    algorithm: Algorithm = "kmeans"
    n_segments: int | None = None
    k_min: int = 3
    k_max: int = 10
    pca_components: int | None = None
    scaler_quantile_range: tuple[float, float] = (10.0, 90.0)
    seed: int = 42
    window_days: int = 7
    max_fit_rows: int = 200_000
    score_sample: int = 5_000
    max_model_age_days: int = 7
    ward_sample: int = 5_000
    density_min_cluster_size: int = 25
    density_min_samples: int | None = None
    dbscan_eps: float | None = None
    density_sample: int = 20_000
    som_rows: int = 8
    som_cols: int = 8
    som_iterations: int = 5_000
    som_sigma: float = 1.5
    som_learning_rate: float = 0.5
    kmeans_n_init: int = 4
    min_match_jaccard: float = 0.3
    keep_name_jaccard: float = 0.5

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {self.algorithm!r}; choose one of {ALGORITHMS}")
        if not self.features:
            raise ValueError("segmentation needs at least one feature")
        if len(set(self.features)) != len(self.features):
            raise ValueError(f"features are listed twice: {self.features}")
        if self.n_segments is not None and self.n_segments < 2:
            raise ValueError("n_segments must be at least 2")
        if not 2 <= self.k_min <= self.k_max:
            raise ValueError("need 2 <= k_min <= k_max")

    def with_changes(self, **changes: Any) -> SegmentationConfig:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)
