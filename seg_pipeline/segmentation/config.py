"""What the segmentation uses and how it fits: one settings class, defaults in code.

:class:`SegmentationConfig` is both the Dagster resource ``segmentation`` (shared by the
segmentation assets, set in the definitions) and the plain settings object the fitting
functions take; there is no second copy of its fields.
"""

from __future__ import annotations

from typing import Any, Self

from dagster import ConfigurableResource
from pydantic import Field, model_validator

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

# Settings that decide when a model is fitted, not how: left out of a model's fingerprint, so
# changing them does not refit the model in force.
SCHEDULING_FIELDS: frozenset[str] = frozenset({"min_history_days"})

# Nulls mean "no denominator" (no order, no send, no review): counts and shares of nothing are
# 0, per-order and per-send averages take the median (the customer is not known to differ),
# recency without an order is the whole observed time.
DEFAULT_ZERO_FILL: tuple[str, ...] = ("return_rate", "cancel_rate", "share_orders_discounted")


class SegmentationConfig(ConfigurableResource):
    """Settings of the segmentation model (every field is described in the UI).

    Nulls of the features mean "no denominator" (no order, no send, no review): ``zero_fill``
    columns get 0, ``recency_days`` takes ``observed_days``, others the training median.
    Density methods call some points noise; those form their own segment.
    """

    features: list[str] = Field(
        default=list(DEFAULT_FEATURES), description="customer_features columns used, in order"
    )
    log_features: list[str] = Field(
        default=list(DEFAULT_LOG_FEATURES),
        description="those of them transformed with log1p (counts, days, money)",
    )
    zero_fill: list[str] = Field(
        default=list(DEFAULT_ZERO_FILL), description="those whose nulls become 0"
    )
    algorithm: str = Field(default="kmeans", description=" | ".join(ALGORITHMS))
    n_segments: int | None = Field(default=None, description="fixed K; empty: choose K")
    k_min: int = Field(default=3, description="smallest K tried")
    k_max: int = Field(default=10, description="largest K tried")
    pca_components: int | None = Field(default=None, description="PCA after scaling")
    scaler_quantile_range: list[float] = Field(
        default=[10.0, 90.0],
        description=(
            "quantile range of the robust scaler (10-90 keeps zero-heavy shares from being "
            "blown up by a zero inter-quartile range)"
        ),
    )
    seed: int = Field(default=42, description="seed of every random step")
    window_days: int = Field(default=7, description="rolling training window in days")
    max_fit_rows: int = Field(default=200_000, description="training rows (sampled)")
    score_sample: int = Field(default=5_000, description="rows each K's silhouette is scored on")
    max_model_age_days: int = Field(default=7, description="refit when the model is older")
    min_history_days: int = Field(
        default=14,
        ge=0,
        description=(
            "days of customer_features history before the first model is fitted (counted from "
            "the first partition): a model fitted on a few days' counts describes the start of "
            "the data, not the customers, and its segments would be thrown away by the next "
            "refits; days before have no model and no segments"
        ),
    )
    ward_sample: int = Field(
        default=5_000, description="rows the Ward hierarchy is built on (others: nearest centre)"
    )
    density_min_cluster_size: int = Field(default=25, description="HDBSCAN/DBSCAN cluster size")
    density_min_samples: int | None = Field(default=None, description="HDBSCAN/DBSCAN samples")
    dbscan_eps: float | None = Field(
        default=None, description="DBSCAN eps; empty: from the k-distance quantile"
    )
    density_sample: int = Field(default=20_000, description="rows density methods fit on")
    som_rows: int = Field(default=8, description="self-organising map rows")
    som_cols: int = Field(default=8, description="self-organising map columns")
    som_iterations: int = Field(default=5_000, description="self-organising map iterations")
    som_sigma: float = Field(default=1.5, description="self-organising map neighbourhood")
    som_learning_rate: float = Field(default=0.5, description="self-organising map learning rate")
    kmeans_n_init: int = Field(default=4, description="K-Means restarts")
    min_match_jaccard: float = Field(
        default=0.3,
        description="shared-member overlap below which a refitted segment is new",
    )
    keep_name_jaccard: float = Field(
        default=0.5,
        description=(
            "overlap from which a continued segment also keeps its name (a weaker continuation "
            "keeps its id and is renamed from its current profile)"
        ),
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
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
        return self

    def with_changes(self, **changes: Any) -> Self:
        """A copy with some fields changed (validated again)."""
        return type(self)(**{**self.model_dump(), **changes})
