"""The activation stage's daily tables: product recommendations, the playbook's audiences,
their export files and the lift each campaign caused.

Each table is a :class:`~seg_pipeline.tables.DailyTable` spec (a plain function of the
stage's modules) turned into an asset by the one factory; the asset check reports playbook
segment names that no segment of the day carries.
"""

from datetime import date
from typing import Any

import duckdb
import polars as pl
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetsDefinition,
    DailyPartitionsDefinition,
    MetadataValue,
    asset_check,
)

from seg_pipeline.activation import audiences, exports, lift, uplift, uplift_daily
from seg_pipeline.activation.playbook import PlaybookFile
from seg_pipeline.activation.recommendations import RECOMMENDATIONS_TABLE
from seg_pipeline.metadata import PlotFolder, markdown_table
from seg_pipeline.partitions import window_dates
from seg_pipeline.resources import Warehouse, query_frame, read_sql
from seg_pipeline.tables import DailyTable, daily_table_asset

GROUP = "activation"

UPLIFT_MODELS_TABLE = DailyTable(
    name="uplift_models",
    group=GROUP,
    kinds=("scikitlearn",),
    deps=(
        "customer_features",
        "customer_clv",
        "customer_scores",
        "stg_campaign_sends",
        "stg_orders",
    ),
    description=(
        "Per day, the uplift model in force: whom a campaign send moves to an order not "
        "cancelled within window_days. On refit days (default every Monday) a challenger is "
        "trained point-in-time on the send log's random control groups (the sent and the "
        "held-back customers of each campaign, model inputs of weekly cut-offs before the "
        "sends): two gradient-boosting models (sent, control) and a class-transformation "
        "regressor, the best Qini coefficient on a later validation cut-off's sends kept, "
        "compared there with response propensity, purchase propensity and random "
        "rankings, and promoted only if its Qini beats the champion's. Every challenger is a "
        "version in the model store. Source: sql/activation/uplift_rows.sql."
    ),
    compute=uplift_daily.uplift_models_of_day,
    config=uplift.UpliftConfig,
    resources=("models",),
    summarize=lambda conn, start, end, last, settings, models: uplift_daily.summarize_uplift_models(
        conn, last, models
    ),
    columns={
        "as_of_date": "Day.",
        "champion_version": "Model-store version of the uplift model in force (null: none yet).",
        "challenger_version": "The refit day's challenger.",
        "promoted": "The challenger became the champion.",
        "decision": "Why (Qini coefficients compared), or why no challenger.",
        "validation_cutoff": "The cut-off whose later sends the challenger was judged on.",
        "challenger_qini": "The challenger's Qini coefficient there (conversions per send).",
        "champion_qini": "The champion's on the same sends.",
    },
)

UPLIFT_SCORES_TABLE = DailyTable(
    name="uplift_scores",
    group=GROUP,
    kinds=("scikitlearn",),
    deps=("uplift_models", "customer_features", "customer_clv"),
    description=(
        "Every customer each day: the uplift of a send on each channel (the change it makes "
        "to the probability of an order not cancelled within the uplift window) by the model "
        "in force in uplift_models; no rows before a first model. The playbook's "
        "rank_by: uplift (or a condition on uplift) reads the campaign's channel. Source: "
        "sql/predictive/scoring_rows.sql."
    ),
    compute=uplift_daily.uplift_scores_of_day,
    resources=("models",),
    columns={
        "as_of_date": "Day.",
        "customer_id": "Customer id.",
        "uplift_email": "Uplift of an e-mail send (probability points as a fraction).",
        "uplift_sms": "Uplift of an SMS send.",
        "uplift_push": "Uplift of a push send.",
        "uplift_model_version": "The uplift model used.",
    },
)

AUDIENCES_TABLE = DailyTable(
    name="audiences",
    group=GROUP,
    deps=("customer_scores", "uplift_scores", "customer_features", "stg_campaign_sends"),
    description=(
        "Per day and playbook campaign, the customers it selects to be sent the next day "
        "(send_date): marketing consent, not suppressed (marketing_suppressions), in its "
        "segments and meeting its score conditions, outside its cool-down and under the "
        "frequency cap (messages of any campaign, this pipeline's and the send log's), "
        "optionally the top N by a score; each treated or held out (is_holdout) by a SHA-256 "
        "of (playbook seed, campaign, customer). Playbook: SEG_PLAYBOOK (playbook.yaml). "
        "Source: sql/activation/audience_candidates.sql, recent_contacts.sql."
    ),
    compute=audiences.audiences_of_day,
    resources=("playbook",),
    create_sql="activation/create_activation_tables",
    also_writes=("marketing_suppressions",),
    summarize=lambda conn, start, end, last, *_: summarize_audiences(last),
    columns={
        "as_of_date": "The day the playbook ran on (scores of this day).",
        "send_date": "The day the campaign is sent: the day after.",
        "playbook_campaign": "Playbook campaign id.",
        "campaign_id": "This send's id (<playbook campaign>-<send day>), as exported.",
        "customer_id": "Customer id.",
        "channel": "email, sms or push.",
        "is_holdout": "Held out: selected but never exported for delivery.",
        "segment_id": "Segment of the day.",
        "segment_name": "Its name.",
        "rank_score": "The rank_by score (null without rank_by).",
        "measurement_window_days": "Days from the send day over which lift is measured.",
        "playbook_version": "SHA-256 prefix of the playbook file.",
    },
)

CAMPAIGN_EXPORTS_TABLE = DailyTable(
    name="campaign_exports",
    group=GROUP,
    kinds=("csv", "parquet"),
    deps=("audiences", "stg_crm_customers", "recommendations"),
    description=(
        "Per day, the files written for delivery tools: <export_dir>/<day>/<campaign>.csv and "
        ".parquet (treated customers only, pseudonymous customer_key, the top three "
        "recommended products, CSV formula cells "
        "neutralised) with manifest.json (row counts, SHA-256, playbook and model versions); "
        "with SEG_DELIVERY_DIR set, also <delivery_dir>/<day>/<campaign>.csv with customer id "
        "and the channel's contact field for consented customers, opened from the vault for "
        "them only. A day's folder is replaced whole. Source: sql/activation/export_rows.sql, "
        "delivery_customers.sql, delivery_rows.sql."
    ),
    compute=exports.campaign_exports_of_day,
    resources=("playbook", "exports_folders", "vault"),
    summarize=lambda conn, start, end, last, *_: summarize_exports(last),
    columns={
        "as_of_date": "The day the audiences were selected.",
        "campaign_id": "The send's id.",
        "kind": "audience (pseudonymous) or delivery (contact fields).",
        "file": "Path of the file written.",
        "row_count": "Customers in it.",
        "sha256": "SHA-256 of the file.",
        "playbook_version": "Playbook version the audiences followed.",
    },
)

CAMPAIGN_LIFT_TABLE = DailyTable(
    name="campaign_lift",
    group=GROUP,
    deps=("audiences", "stg_orders"),
    description=(
        "Per day, for every campaign send of the last lookback_days whose measurement window "
        "has ended (scope send_day) and per playbook campaign over all of them (scope "
        "campaign): treated against holdout conversion rate (an order not cancelled within "
        "the window) and revenue per customer, absolute and relative lift with 95% intervals, "
        "sample sizes, incremental conversions; 'holdout too small for a conclusion' instead "
        "of figures when either group has fewer than min_outcomes conversions or "
        "non-conversions. Source: sql/activation/campaign_outcomes.sql."
    ),
    compute=lift.campaign_lift_of_day,
    config=lift.LiftConfig,
    resources=("plots",),
    summarize=lambda conn, start, end, last, settings, plots: summarize_lift(end, last, plots),
    columns={c: c.replace("_", " ") for c in lift.LIFT_SCHEMA},
)

ACTIVATION_TABLES: tuple[DailyTable, ...] = (
    RECOMMENDATIONS_TABLE,
    UPLIFT_MODELS_TABLE,
    UPLIFT_SCORES_TABLE,
    AUDIENCES_TABLE,
    CAMPAIGN_EXPORTS_TABLE,
    CAMPAIGN_LIFT_TABLE,
)


def summarize_audiences(last: pl.DataFrame | None) -> dict[str, Any]:
    """Metadata: customers per campaign and group on the run's last day."""
    if last is None or last.is_empty():
        return {"audience_counts": MetadataValue.md("No campaign selected anyone.")}
    counts = (
        last.group_by("playbook_campaign", "channel")
        .agg(
            (~pl.col("is_holdout")).sum().alias("treated"),
            pl.col("is_holdout").sum().alias("holdout"),
        )
        .sort("playbook_campaign")
    )
    meta: dict[str, Any] = {
        "audience_counts": MetadataValue.md(markdown_table(list(counts.columns), counts.rows()))
    }
    for row in counts.iter_rows(named=True):
        meta[f"{row['playbook_campaign']}_treated"] = int(row["treated"])
        meta[f"{row['playbook_campaign']}_holdout"] = int(row["holdout"])
    return meta


def summarize_exports(last: pl.DataFrame | None) -> dict[str, Any]:
    """Metadata: the files of the run's last day (paths, rows, hashes; no customer)."""
    if last is None or last.is_empty():
        return {}
    shown = last.select("kind", "campaign_id", "file", "row_count", "sha256")
    return {
        "files": MetadataValue.md(markdown_table(list(shown.columns), shown.rows(), 80)),
        "exported_customers": int(
            last.filter(pl.col("file").str.ends_with(".parquet"))["row_count"].sum()
        ),
    }


def summarize_lift(end: date, last: pl.DataFrame | None, plots: PlotFolder) -> dict[str, Any]:
    """Metadata: lift per playbook campaign so far, and the plot of lift per send day."""
    from seg_pipeline.activation import plots as draw

    if last is None or last.is_empty():
        return {"lift": MetadataValue.md("No campaign send has finished its window yet.")}
    columns = (
        "playbook_campaign",
        "n_treated",
        "n_holdout",
        "conversion_rate_treated",
        "conversion_rate_holdout",
        "absolute_lift",
        "absolute_lift_low",
        "absolute_lift_high",
        "revenue_lift",
        "conclusion",
    )
    campaigns = last.filter(pl.col("scope") == "campaign").select(columns)
    rows = [
        tuple(round(v, 4) if isinstance(v, float) else v for v in row) for row in campaigns.rows()
    ]
    meta: dict[str, Any] = {"lift": MetadataValue.md(markdown_table(list(columns), rows))}
    plots.attach(
        meta, f"campaign_lift/{end.isoformat()}", "lift", draw.lift_plot(last), "campaign lift"
    )
    return meta


def build_activation_assets(partitions_def: DailyPartitionsDefinition) -> list[AssetsDefinition]:
    """The activation assets on the shared daily partitions."""
    return [daily_table_asset(table, partitions_def) for table in ACTIVATION_TABLES]


def unknown_segments(
    conn: duckdb.DuckDBPyConnection, day: date, playbook: PlaybookFile
) -> list[tuple[str, str, int]]:
    """(campaign, segment name, playbook line) of every playbook segment name that no
    customer's segment carries on ``day``."""
    book = playbook.load()
    names = set(
        query_frame(conn, read_sql("activation/segment_names"), {"as_of_date": day})[
            "segment_name"
        ].to_list()
    )
    return [
        (c.id, name, line)
        for c in book.campaigns
        for name, line in zip(c.segments, c.segment_lines, strict=True)
        if name not in names
    ]


def build_activation_checks(
    partitions_def: DailyPartitionsDefinition,
) -> list[AssetChecksDefinition]:
    """The check that playbook segment names exist among the day's segments."""

    @asset_check(
        asset="audiences",
        name="audiences_playbook_segments",
        description=(
            "Every segment name the playbook targets is carried by some customer's segment on "
            "the run's last day; warns naming the campaign and playbook line otherwise (such "
            "a campaign selects nobody)."
        ),
        partitions_def=partitions_def,
        blocking=False,
    )
    def audiences_playbook_segments(
        context: AssetCheckExecutionContext, warehouse: Warehouse, playbook: PlaybookFile
    ) -> AssetCheckResult:
        _, end = window_dates(context)
        with warehouse.connection() as conn:
            missing = unknown_segments(conn, end, playbook)
        return AssetCheckResult(
            passed=not missing,
            severity=AssetCheckSeverity.WARN,
            metadata={
                "unknown_segments": MetadataValue.md(
                    markdown_table(
                        ["campaign", "segment name", "playbook line"],
                        [(c, n, f"{playbook.path}:{line}") for c, n, line in missing],
                    )
                    if missing
                    else "Every playbook segment name exists on this day."
                ),
                "count": len(missing),
            },
        )

    return [audiences_playbook_segments]
