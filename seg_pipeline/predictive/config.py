"""How the predictive models are trained: one settings class, defaults in code.

:class:`PredictiveConfig` is the run config of ``predictive_models`` (launchpad, ``ops``
config) and the plain settings object the training functions take. A model carries its target
and the settings it was trained with, so scoring never reads them from elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dagster import Config
from pydantic import Field, field_validator

# Columns of a training row that are not model inputs: keys, dates (their information is in
# recency_days and tenure_days), the snapshot day and what happened after it.
NOT_FEATURES: tuple[str, ...] = (
    "as_of_date",
    "customer_id",
    "first_order_date",
    "last_order_date",
    "days_to_next_order",
)
# Text columns of customer_features: categorical inputs, split natively by gradient boosting
# and one-hot encoded for the linear candidate.
CATEGORICAL_FEATURES: tuple[str, ...] = ("dominant_review_topic",)

Family = Literal["hist_gradient_boosting", "logistic_regression"]
FAMILIES: tuple[str, ...] = ("hist_gradient_boosting", "logistic_regression")
CHAMPION_METRICS: tuple[str, ...] = ("roc_auc", "pr_auc", "neg_brier")


@dataclass(frozen=True)
class Target:
    """What a model predicts about a customer from a cut-off day C.

    ``churn``: no completed order in (C, C + horizon_days]; ``purchase``: at least one. The
    name is the model-store kind of its models; ``score_column`` its column in
    ``customer_scores``.
    """

    name: Literal["churn", "purchase"]
    horizon_days: int
    score_column: str

    @property
    def positive_when_no_order(self) -> bool:
        return self.name == "churn"


class PredictiveConfig(Config):
    """Horizons, training window, candidates and the champion rule of the predictive models."""

    churn_horizon_days: int = Field(
        default=90, description="churn: no completed order in this many days after the cut-off"
    )
    purchase_horizon_days: int = Field(
        default=30, description="propensity: a completed order within this many days"
    )
    refit_every_days: int = Field(
        default=7, description="challengers are trained on this schedule (7: every Monday)"
    )
    training_cutoffs: int = Field(
        default=6, description="cut-offs stacked into a training set (fewer if history is short)"
    )
    cutoff_every_days: int = Field(default=7, description="days between training cut-offs")
    max_rows_per_cutoff: int = Field(
        default=50_000,
        description="customers sampled (seeded) per cut-off, for training and validation",
    )
    candidates: list[str] = Field(
        default=["hist_gradient_boosting", "logistic_regression"],
        description="model families tried; the best on the validation cut-off is the challenger",
    )
    champion_metric: str = Field(
        default="roc_auc",
        description="a challenger replaces the champion only if it is higher on this metric, "
        "both measured on the challenger's validation cut-off",
    )
    protected_attributes: list[str] = Field(
        default=["age_band", "gender"],
        description="left out of training unless use_protected_attributes",
    )
    use_protected_attributes: bool = Field(default=False)
    min_labels: int = Field(
        default=30,
        description="fewer positive or negative training or validation labels: no challenger",
    )
    seed: int = Field(default=20261126, description="sampling, folds and estimators")
    set_champion: list[str] = Field(
        default=[],
        description="manual promotion or rollback (job set_champion): these model-store "
        "versions become their target's champion on the run's days; nothing is trained",
    )

    @field_validator("candidates")
    @classmethod
    def _known_families(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(FAMILIES))
        if unknown or not value:
            raise ValueError(f"candidates must be some of {FAMILIES}, got {value}")
        return value

    @field_validator("champion_metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value not in CHAMPION_METRICS:
            raise ValueError(f"champion_metric must be one of {CHAMPION_METRICS}, got {value!r}")
        return value

    def targets(self) -> tuple[Target, ...]:
        return (
            Target("churn", self.churn_horizon_days, "churn_risk"),
            Target("purchase", self.purchase_horizon_days, "purchase_propensity"),
        )
