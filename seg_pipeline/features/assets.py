"""Feature assets: review topics and sentiment, customer features, lifetime value.

Thin wrappers: each loops over the days of its run's partition window and calls the plain
functions of :mod:`seg_pipeline.features.pipeline` inside one transaction per asset, so a
backfill is one run and a failed run leaves every table as it was. That module (scikit-learn,
SciPy, VADER) is imported inside the assets, so loading the definitions does not pay for it.
"""

from datetime import date
from typing import Any

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    Config,
    DailyPartitionsDefinition,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

from seg_pipeline.assets_common import warehouse_asset_options
from seg_pipeline.features.columns import described_schema
from seg_pipeline.metadata import window_metadata
from seg_pipeline.partitions import days_between, window_dates
from seg_pipeline.resources import Warehouse, transaction

GROUP = "features"


class TopicModelConfig(Config):
    """How the review topic model is refitted."""

    n_topics: int = Field(default=6, description="NMF topics")
    lookback_days: int = Field(default=365, description="arrival days of reviews to train on")
    refit_every_days: int = Field(default=7, description="refit schedule (7: every Monday)")
    max_features: int = Field(default=2000, description="TF-IDF vocabulary size")
    min_reviews: int = Field(default=30, description="fewer training reviews: no model")
    seed: int = Field(default=0, description="random state of NMF")


class CustomerFeaturesConfig(Config):
    """How customer_features is computed."""

    incremental: bool = Field(
        default=True,
        description=(
            "carry the state of the day before over and recompute only the customers a day "
            "touches (same rows, seconds at a million customers); false: recompute every "
            "customer, e.g. after re-staging past days without re-running their features"
        ),
    )


class CLVModelConfig(Config):
    """How the BG/NBD and Gamma-Gamma models are refitted."""

    refit_every_days: int = Field(default=7, description="refit schedule (7: every Monday)")
    penalizer: float = Field(default=0.0, description="L2 penalty on the log-parameters")
    min_customers: int = Field(default=50, description="fewer buyers: parameters left null")


class CLVScoreConfig(Config):
    """Lifetime value horizon and discounting."""

    horizon_days: int = Field(default=365, description="CLV horizon in days")
    annual_discount_rate: float = Field(default=0.10, description="yearly discount rate")


def _metadata(conn: Any, table: str, column: str, start: date, end: date, preview: bool) -> dict:
    meta = window_metadata(conn, table, column, start, end, preview=preview)
    meta["dagster/column_schema"] = described_schema(conn, table)
    return meta


def build_feature_assets(partitions_def: DailyPartitionsDefinition) -> list[AssetsDefinition]:
    """The feature assets on the shared daily partitions."""
    common = warehouse_asset_options(GROUP, partitions_def)

    @asset(
        name="review_topic_model",
        kinds={"duckdb", "scikitlearn"},
        deps=[AssetKey("stg_reviews")],
        description=(
            "TF-IDF + NMF topic model of review texts (scikit-learn), refitted on a schedule "
            "(default every Monday) on the reviews of the lookback window ending on the refit "
            "day; each day's partition holds the model in force that day (pickled, table "
            "review_topic_model) and its topic labels (top terms). Source: "
            "sql/features/review_topic_training.sql."
        ),
        **common,
    )
    def review_topic_model(
        context: AssetExecutionContext, warehouse: Warehouse, config: TopicModelConfig
    ) -> MaterializeResult:
        from seg_pipeline.features import pipeline as fp

        start, end = window_dates(context)
        settings = fp.TopicSettings(**config.model_dump())
        fitted: dict[date, dict[str, Any]] = {}
        rows = []
        with warehouse.connection() as conn, transaction(conn):
            for day in days_between(start, end):
                refit = fp.refit_day(day, settings.refit_every_days)
                if refit not in fitted:
                    fitted[refit], _ = fp.fit_topic_model_row(conn, day, settings)
                rows.append({**fitted[refit], "as_of_date": day})
                fp.write_frame(
                    conn, "review_topic_model", fp.topic_model_frame(rows[-1:]), "as_of_date", day
                )
            meta = _metadata(conn, "review_topic_model", "as_of_date", start, end, preview=False)
        last = rows[-1]
        context.log.info(f"review_topic_model: {len(fitted)} fits for {start}..{end}")
        return MaterializeResult(
            metadata={
                **meta,
                "fits": len(fitted),
                "latest_fitted_on": last["fitted_on"].isoformat(),
                "latest_training_reviews": last["n_reviews"],
                "latest_topic_labels": MetadataValue.json(list(last["topic_labels"])),
            }
        )

    @asset(
        name="review_nlp",
        kinds={"duckdb", "python"},
        deps=[AssetKey("stg_reviews"), AssetKey("review_topic_model")],
        description=(
            "One row per review (partition: arrival day): VADER compound sentiment and label, "
            "and the strongest topic of the topic model in force on the arrival day. The review "
            "text itself is not copied. Metadata: agreement of sentiment with the star rating. "
            "Source: sql/features/review_nlp_input.sql."
        ),
        **common,
    )
    def review_nlp(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
        from seg_pipeline.features import pipeline as fp

        start, end = window_dates(context)
        frames = []
        with warehouse.connection() as conn, transaction(conn):
            for day in days_between(start, end):
                frames.append(fp.write_review_nlp(conn, day))
            meta = _metadata(conn, "review_nlp", "arrival_date", start, end, preview=True)
        scored = pl.concat(frames)
        agreement = fp.review_agreement(scored)
        return MaterializeResult(
            metadata={
                **meta,
                "sentiment_rating_spearman": agreement["spearman"],
                "sentiment_rating_polar_agreement": agreement["polar_agreement"],
                "reviews_with_topic": int(scored["topic_id"].is_not_null().sum()),
            }
        )

    @asset(
        name="customer_features",
        kinds={"duckdb", "sql"},
        deps=[
            AssetKey("stg_crm_customers"),
            AssetKey("stg_orders"),
            AssetKey("stg_web_events"),
            AssetKey("stg_campaign_sends"),
            AssetKey("review_nlp"),
        ],
        description=(
            "One row per customer known to the CRM as of each day: recency, frequency, "
            "monetary value, order intervals, returns, cancellations, discounts, category and "
            "channel shares, 30/90-day web engagement, campaign response and review sentiment "
            "and topic, using only rows that happened and arrived on or before the day "
            "(point in time). Computed incrementally: the running totals of the day before "
            "(table customer_feature_state) with only the customers the day touched "
            "recomputed, and web sessions pre-counted per arrival day (table "
            "web_session_fragments). Columns: docs/data_dictionary.md. Source: "
            "sql/features/customer_features.sql, customer_feature_state.sql, "
            "web_session_fragments.sql."
        ),
        **common,
    )
    def customer_features(
        context: AssetExecutionContext, warehouse: Warehouse, config: CustomerFeaturesConfig
    ) -> MaterializeResult:
        from seg_pipeline.features import pipeline as fp

        start, end = window_dates(context)
        with warehouse.connection() as conn, transaction(conn):
            for day in days_between(start, end):
                fp.write_customer_features(conn, day, config.incremental)
            meta = _metadata(conn, "customer_features", "as_of_date", start, end, preview=True)
            buyers = conn.execute(
                "SELECT count(*) FILTER (WHERE count_orders > 0) FROM customer_features "
                "WHERE as_of_date = $d",
                {"d": end},
            ).fetchall()[0][0]
        return MaterializeResult(metadata={**meta, "customers_with_orders_last_day": buyers})

    @asset(
        name="clv_model",
        kinds={"duckdb", "scipy"},
        deps=[AssetKey("stg_orders")],
        description=(
            "BG/NBD (Fader, Hardie and Lee 2005) and Gamma-Gamma spend model fitted by maximum "
            "likelihood (scipy) on the purchase history up to the refit day (default every "
            "Monday); each day's partition holds the parameters in force that day. Metadata: "
            "parameters and log-likelihoods. Source: sql/features/clv_summary.sql."
        ),
        **common,
    )
    def clv_model(
        context: AssetExecutionContext, warehouse: Warehouse, config: CLVModelConfig
    ) -> MaterializeResult:
        from seg_pipeline.features import pipeline as fp

        start, end = window_dates(context)
        cache: dict[date, dict[str, Any]] = {}
        with warehouse.connection() as conn, transaction(conn):
            for day in days_between(start, end):
                row = fp.clv_model_row(
                    conn,
                    day,
                    config.refit_every_days,
                    config.penalizer,
                    cache,
                    config.min_customers,
                )
                frame = pl.DataFrame([row], schema=fp.CLV_MODEL_SCHEMA)
                fp.write_frame(conn, "clv_model", frame, "as_of_date", day)
            meta = _metadata(conn, "clv_model", "as_of_date", start, end, preview=True)
        return MaterializeResult(metadata={**meta, "fits": len(cache), **fp.params_metadata(row)})

    @asset(
        name="customer_clv",
        kinds={"duckdb", "scipy"},
        deps=[AssetKey("stg_orders"), AssetKey("clv_model")],
        description=(
            "Per customer with a purchase, each day: BG/NBD probability alive, expected "
            "purchases in the next 30/90/365 days, Gamma-Gamma expected order value and the "
            "discounted CLV over the configured horizon, from the clv_model parameters in force "
            "that day. Source: sql/features/clv_summary.sql."
        ),
        **common,
    )
    def customer_clv(
        context: AssetExecutionContext, warehouse: Warehouse, config: CLVScoreConfig
    ) -> MaterializeResult:
        from seg_pipeline.features import pipeline as fp

        start, end = window_dates(context)
        with warehouse.connection() as conn, transaction(conn):
            for day in days_between(start, end):
                params, fitted_on = fp.load_clv_params(conn, day)
                frame = fp.customer_clv_frame(
                    fp.clv_summary(conn, day),
                    params,
                    day,
                    fitted_on,
                    config.horizon_days,
                    config.annual_discount_rate,
                )
                fp.write_frame(conn, "customer_clv", frame, "as_of_date", day)
            meta = _metadata(conn, "customer_clv", "as_of_date", start, end, preview=True)
            total = conn.execute(
                "SELECT sum(clv), avg(prob_alive) FROM customer_clv WHERE as_of_date = $d",
                {"d": end},
            ).fetchall()[0]
        return MaterializeResult(
            metadata={
                **meta,
                "total_clv_last_day": float(total[0] or 0.0),
                "mean_prob_alive_last_day": float(total[1] or 0.0),
            }
        )

    return [review_topic_model, review_nlp, customer_features, clv_model, customer_clv]
