"""The predictive stage's daily tables: the champion models in force and every customer's
scores.

Each table is a :class:`~seg_pipeline.tables.DailyTable` spec (a plain function of
:mod:`.daily`) turned into an asset by the one factory. scikit-learn and matplotlib are
imported when the functions run.
"""

from __future__ import annotations

from dagster import AssetsDefinition, DailyPartitionsDefinition

from seg_pipeline.predictive import daily
from seg_pipeline.predictive.columns import CUSTOMER_SCORES, PREDICTIVE_MODELS
from seg_pipeline.predictive.config import PredictiveConfig
from seg_pipeline.tables import DailyTable, daily_table_asset

GROUP = "predictive"

PREDICTIVE_MODELS_TABLE = DailyTable(
    name="predictive_models",
    group=GROUP,
    kinds=("scikitlearn",),
    deps=("customer_features", "stg_orders", "stg_campaign_sends", "customer_clv"),
    description=(
        "Per day and target (churn: no completed order in the next churn_horizon_days; "
        "purchase: one in the next purchase_horizon_days; response: a campaign send of the "
        "next response_window_days converts; next_order: an order within d days, for d up to "
        "next_order_horizon_days), the champion model in force. On refit days (default every "
        "Monday) a challenger is trained point-in-time on stacked weekly customer_features "
        "and customer_clv snapshots whose labels end before a later validation cut-off "
        "(HistGradientBoosting and logistic regression, calibrated isotonic or sigmoid), "
        "measured there beside the baselines (recency, RFM, BG/NBD, last response rate) and "
        "the champion, and promoted only if it beats the champion. Every challenger is a "
        "version in the model store. Source: sql/predictive/training_rows.sql, "
        "response_rows.sql."
    ),
    compute=daily.predictive_models_rows,
    config=PredictiveConfig,
    resources=("models", "plots"),
    summarize=daily.summarize_models,
    columns=PREDICTIVE_MODELS,
)

CUSTOMER_SCORES_TABLE = DailyTable(
    name="customer_scores",
    group=GROUP,
    kinds=("scikitlearn",),
    deps=("predictive_models", "customer_features", "customer_clv", "customer_segments"),
    description=(
        "Every customer each day: churn risk and its decile, purchase propensity, expected date "
        "of next order and response probability per campaign channel (calibrated "
        "probabilities from the champions of predictive_models; null before a first "
        "champion), the three inputs that raise the churn risk most for the riskiest decile "
        "(exact Shapley values, shap), expected lifetime value and probability alive "
        "(customer_clv), segment (customer_segments) and the model versions used. Metadata: "
        "score distributions "
        "and their shift from the day before."
    ),
    compute=daily.customer_scores_rows,
    config=daily.CustomerScoresConfig,
    resources=("models",),
    summarize=daily.summarize_scores,
    columns=CUSTOMER_SCORES,
)

PREDICTIVE_TABLES: tuple[DailyTable, ...] = (PREDICTIVE_MODELS_TABLE, CUSTOMER_SCORES_TABLE)


def build_predictive_assets(partitions_def: DailyPartitionsDefinition) -> list[AssetsDefinition]:
    """The predictive assets on the shared daily partitions."""
    return [daily_table_asset(table, partitions_def) for table in PREDICTIVE_TABLES]
