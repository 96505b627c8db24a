"""How the predictive models are trained: one settings class, defaults in code.

:class:`PredictiveConfig` is the run config of ``predictive_models`` (launchpad, ``ops``
config) and the plain settings object the training functions take. A model carries its target
and the settings it was trained with, so scoring never reads them from elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

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
    "sent_date",
)
# Text columns of customer_features: categorical inputs, split natively by gradient boosting
# and one-hot encoded for the linear candidate.
CATEGORICAL_FEATURES: tuple[str, ...] = ("dominant_review_topic",)

Family = Literal["hist_gradient_boosting", "logistic_regression"]
FAMILIES: tuple[str, ...] = ("hist_gradient_boosting", "logistic_regression")
CHAMPION_METRICS: tuple[str, ...] = ("roc_auc", "pr_auc", "neg_brier")


# Channels of stg_campaign_sends (its row rule): the response model scores each.
CHANNELS: tuple[str, ...] = ("email", "sms", "push")
TargetName = Literal["churn", "purchase", "response", "next_order"]


@dataclass(frozen=True)
class Target:
    """What a model predicts about a customer from a cut-off day C.

    - ``churn``: no completed order in (C, C + horizon_days]; ``purchase``: at least one;
    - ``response``: a campaign message sent in (C, C + horizon_days] converted (the campaign
      system's attributed conversion on the send); one row per send, its ``channel`` an input;
    - ``next_order``: a completed order within ``order_within_days`` after C, for each
      horizon of :attr:`conditions` (fractions of horizon_days); the predicted curve over those
      horizons gives the expected date of the next order.

    The name is the model-store kind of its models; ``score_column`` its column in
    ``customer_scores`` (the response and next-order models fill several).
    """

    name: TargetName
    horizon_days: int
    score_column: str

    @property
    def positive_when_no_order(self) -> bool:
        return self.name == "churn"

    @property
    def condition(self) -> str | None:
        """The input a score is asked for at given values (the channel of a send, the horizon
        of the next-order curve); its metrics are averaged over those values."""
        return {"response": "channel", "next_order": "order_within_days"}.get(self.name)

    @property
    def conditions(self) -> tuple[Any, ...]:
        """The values of :attr:`condition` scored every day."""
        if self.name == "response":
            return CHANNELS
        if self.name == "next_order":
            return next_order_grid(self.horizon_days)
        return ()


def next_order_grid(horizon_days: int) -> tuple[int, ...]:
    """The horizons of the next-order curve: 1/8, 1/4, 1/2 and all of ``horizon_days``
    (rounded up; 60 -> 8, 15, 30, 60)."""
    return tuple(sorted({max(1, -(-horizon_days * k // 8)) for k in (1, 2, 4, 8)}))


class PredictiveConfig(Config):
    """Horizons, training window, candidates and the champion rule of the predictive models."""

    churn_horizon_days: int = Field(
        default=90, description="churn: no completed order in this many days after the cut-off"
    )
    purchase_horizon_days: int = Field(
        default=30, description="propensity: a completed order within this many days"
    )
    response_window_days: int = Field(
        default=7,
        description="response: sends of this many days after a cut-off, each labelled by "
        "its conversion",
    )
    next_order_horizon_days: int = Field(
        default=60,
        description="expected date of next order: the curve P(order within d days) is "
        "learnt up to this many days; no expected date when it stays under 0.5",
    )
    refit_every_days: int = Field(
        default=7, description="challengers are trained on this schedule (7: every Monday)"
    )
    training_cutoffs: int = Field(
        default=6, description="cut-offs stacked into a training set (fewer if history is short)"
    )
    response_training_cutoffs: int = Field(
        default=12,
        description="cut-offs stacked for the response model (conversions are rare: a "
        "campaign converts about one send in a hundred)",
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
        default=100,
        description="fewer positive or negative training or validation labels: no challenger "
        "(with fewer, a validation ROC AUC is uncertain by more than about 0.03)",
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
            Target("response", self.response_window_days, "response_probability"),
            Target("next_order", self.next_order_horizon_days, "expected_next_order_date"),
        )
