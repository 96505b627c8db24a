"""The feature stage's daily tables: web sessions, customer features, review NLP, lifetime value.

Each table is a :class:`~seg_pipeline.tables.DailyTable` spec (a SQL file or a plain function
of :mod:`.reviews` / :mod:`.lifetime_value`) turned into an asset by the one factory. The
functions import scikit-learn, SciPy and VADER only when they run, so loading the definitions
does not pay for them.
"""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import polars as pl
from dagster import AssetsDefinition, Config, DailyPartitionsDefinition
from pydantic import Field

from seg_pipeline.features import lifetime_value, reviews
from seg_pipeline.features.columns import (
    CLV_MODEL,
    CUSTOMER_CLV,
    CUSTOMER_FEATURES,
    REVIEW_NLP,
    REVIEW_TOPIC_MODEL,
    STATE_KEEP_DAYS,
)
from seg_pipeline.partitions import days_between
from seg_pipeline.resources import query_frame, read_sql
from seg_pipeline.tables import (
    DailyTable,
    daily_table_asset,
    daily_tables_asset,
    sql_summary,
    write_day,
)

GROUP = "features"
# Days of web sessions the features look back on (sql/features/customer_features.sql).
WEB_LOOKBACK_DAYS = 90


class CustomerFeaturesConfig(Config):
    """How customer_features (and its running totals, customer_feature_state) are computed."""

    incremental: bool = Field(
        default=True,
        description=(
            "carry the state of the day before over and recompute only the customers a day "
            "touches (same rows, seconds at a million customers); false: recompute every "
            "customer, e.g. after re-staging past days without re-running their features"
        ),
    )


REVIEW_TOPIC_MODEL_TABLE = DailyTable(
    name="review_topic_model",
    group=GROUP,
    kinds=("scikitlearn",),
    deps=("stg_reviews",),
    description=(
        "The review topic model in force each day: TF-IDF + NMF (scikit-learn), refitted on a "
        "schedule (default every Monday) on the reviews of the lookback window ending on the "
        "refit day and saved once per fit in the model store; each day's row names the "
        "version and its topic labels (top terms). Source: "
        "sql/features/review_topic_training.sql."
    ),
    compute=reviews.topic_model_rows,
    config=reviews.TopicModelConfig,
    resources=("models",),
    summarize=reviews.summarize_topic_models,
    preview=False,
    columns=REVIEW_TOPIC_MODEL,
)

REVIEW_NLP_TABLE = DailyTable(
    name="review_nlp",
    group=GROUP,
    kinds=("python",),
    deps=("stg_reviews", "review_topic_model"),
    description=(
        "One row per review (partition: arrival day): VADER compound sentiment and label, "
        "and the strongest topic of the topic model in force on the arrival day. The review "
        "text itself is not copied. Metadata: agreement of sentiment with the star rating. "
        "Source: sql/features/review_nlp_input.sql."
    ),
    compute=reviews.review_nlp_rows,
    resources=("models",),
    summarize=reviews.summarize_review_nlp,
    partition_column="arrival_date",
    columns=REVIEW_NLP,
)

WEB_SESSION_FRAGMENTS_TABLE = DailyTable(
    name="web_session_fragments",
    group=GROUP,
    kinds=("sql",),
    deps=("stg_web_events",),
    description=(
        "Web events of known customers counted per arrival day, customer, session and event "
        "day, so the 90-day web features of customer_features read one row per session "
        "instead of every event. A working table. Source: "
        "sql/features/web_session_fragments.sql."
    ),
    sql="features/web_session_fragments",
    create_sql="features/create_web_session_fragments",
    partition_column="arrival_date",
    preview=False,
)

CUSTOMER_FEATURE_STATE_TABLE = DailyTable(
    name="customer_feature_state",
    group=GROUP,
    kinds=("sql",),
    deps=("stg_crm_customers", "stg_orders", "stg_campaign_sends", "review_nlp"),
    description=(
        "Per customer and day, the running totals behind customer_features that do not "
        "depend on the day (counts, sums, first and last dates, gaps; the latest CRM "
        "version's attributes). Day D is the state of "
        "D - 1 with only the customers touched on D recomputed (incremental), or every "
        "customer when D - 1 is missing. A working table, materialized with customer_features: "
        f"the last {STATE_KEEP_DAYS + 1} days are kept. Source: "
        "sql/features/customer_feature_state.sql."
    ),
    sql="features/customer_feature_state",
    create_sql="features/create_customer_feature_state",
    config=CustomerFeaturesConfig,
    keep_days=STATE_KEEP_DAYS,
    preview=False,
)

CUSTOMER_FEATURES_TABLE = DailyTable(
    name="customer_features",
    group=GROUP,
    kinds=("sql",),
    deps=("customer_feature_state", "web_session_fragments"),
    description=(
        "One row per customer known to the CRM as of each day: recency, frequency, "
        "monetary value, order intervals, returns, cancellations, discounts, category and "
        "channel shares, 30/90-day web engagement, campaign response and review sentiment "
        "and topic, and the age band, gender and country of the latest CRM version, using "
        "only rows that happened and arrived on or before the day (point in time). Columns: "
        "docs/data_dictionary.md. Source: "
        "sql/features/customer_features.sql."
    ),
    sql="features/customer_features",
    summarize=sql_summary("features/customer_features_summary"),
    columns=CUSTOMER_FEATURES,
)

CLV_MODEL_TABLE = DailyTable(
    name="clv_model",
    group=GROUP,
    kinds=("scipy",),
    deps=("stg_orders",),
    description=(
        "The lifetime-value model in force each day: BG/NBD (Fader, Hardie and Lee 2005) and "
        "Gamma-Gamma spend model fitted by maximum likelihood (scipy) on the purchase history "
        "up to the refit day (default every Monday), saved once per fit in the model store; "
        "each day's row names the version and holds its parameters and log-likelihoods. "
        "Source: sql/features/clv_summary.sql."
    ),
    compute=lifetime_value.clv_model_rows,
    config=lifetime_value.CLVModelConfig,
    resources=("models",),
    summarize=lifetime_value.summarize_clv_models,
    columns=CLV_MODEL,
)

CUSTOMER_CLV_TABLE = DailyTable(
    name="customer_clv",
    group=GROUP,
    kinds=("scipy",),
    deps=("stg_orders", "clv_model"),
    description=(
        "Per customer with a purchase, each day: BG/NBD probability alive, expected "
        "purchases in the next 30/90/365 days, Gamma-Gamma expected order value and the "
        "discounted CLV over the configured horizon, from the clv_model in force that day. "
        "Source: sql/features/clv_summary.sql."
    ),
    compute=lifetime_value.customer_clv_rows,
    config=lifetime_value.CLVScoreConfig,
    resources=("models",),
    summarize=lifetime_value.summarize_customer_clv,
    columns=CUSTOMER_CLV,
)

FEATURE_TABLES: tuple[DailyTable, ...] = (
    REVIEW_TOPIC_MODEL_TABLE,
    REVIEW_NLP_TABLE,
    WEB_SESSION_FRAGMENTS_TABLE,
    CLV_MODEL_TABLE,
    CUSTOMER_CLV_TABLE,
)


def features_in_full(conn: duckdb.DuckDBPyConnection, day: date) -> pl.DataFrame:
    """customer_features of ``day`` computed in full from the staging tables (web fragments of
    the 90-day lookback, every customer's running totals), nothing written: the tables are
    built in a transaction that is rolled back. For tests and analysis; the assets do the same
    incrementally."""
    conn.execute("BEGIN TRANSACTION")
    try:
        for arrival in days_between(day - timedelta(days=WEB_LOOKBACK_DAYS - 1), day):
            write_day(conn, WEB_SESSION_FRAGMENTS_TABLE, arrival)
        full = CustomerFeaturesConfig(incremental=False)
        write_day(conn, CUSTOMER_FEATURE_STATE_TABLE, day, full)
        write_day(conn, CUSTOMER_FEATURES_TABLE, day)
        return query_frame(
            conn, read_sql("segmentation/customer_features_of_day"), {"as_of_date": day}
        )
    finally:
        conn.execute("ROLLBACK")


def build_feature_assets(partitions_def: DailyPartitionsDefinition) -> list[AssetsDefinition]:
    """The feature assets on the shared daily partitions; the running totals and the features
    built on them are one step (the totals are pruned once the features have used them)."""
    together = (CUSTOMER_FEATURE_STATE_TABLE, CUSTOMER_FEATURES_TABLE)
    return [
        *(daily_table_asset(table, partitions_def) for table in FEATURE_TABLES),
        daily_tables_asset("customer_features", together, partitions_def),
    ]
