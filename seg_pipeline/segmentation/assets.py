"""The segmentation stage's daily tables: the model in force, customers' segments, migrations
and profiles.

Each table is a :class:`~seg_pipeline.tables.DailyTable` spec (a SQL file or a plain function
of :mod:`.daily`) turned into an asset by the one factory. scikit-learn, SciPy, MiniSom and
matplotlib are imported when the functions run, so loading the definitions does not pay for
them.
"""

from __future__ import annotations

from dagster import AssetsDefinition, DailyPartitionsDefinition

from seg_pipeline.segmentation import daily
from seg_pipeline.tables import DailyTable, daily_table_asset, sql_summary

GROUP = "segmentation"

SEGMENTATION_MODEL_TABLE = DailyTable(
    name="segmentation_model",
    group=GROUP,
    kinds=("scikitlearn",),
    deps=("customer_features",),
    description=(
        "The segmentation model in force each day: preprocessing (impute, log1p, robust "
        "scaling, optional PCA) and a clustering algorithm (K-Means by default; "
        "MiniBatchKMeans, Ward, HDBSCAN/DBSCAN, Gaussian mixture, self-organising map), "
        "K chosen over a range by silhouette, Calinski-Harabasz and Davies-Bouldin (BIC "
        "for mixtures). Refitted on the customer_features of a rolling window when asked "
        "(config force_refit, job refit_segmentation), when the settings change or when "
        "the model is older than max_model_age_days; a refit's segments are matched to "
        "the previous model's by shared members (Hungarian) so ids and names carry over. "
        "Every version is saved in the model store (kind segmentation). Source: "
        "sql/segmentation/segmentation_training.sql."
    ),
    compute=daily.segmentation_model_rows,
    config=daily.SegmentationModelConfig,
    resources=("models", "segmentation", "plots"),
    summarize=daily.summarize_model,
)

CUSTOMER_SEGMENTS_TABLE = DailyTable(
    name="customer_segments",
    group=GROUP,
    kinds=("scikitlearn", "sql"),
    deps=("segmentation_model", "customer_features"),
    description=(
        "Every customer's segment each day (stable segment_id and name) from the model in "
        "force that day, with the distance to the segment centre, beside the classic RFM "
        "quintile segmentation as a baseline (sql/segmentation/customer_rfm.sql). "
        "Metadata: segment sizes and day-over-day stability (ARI, share keeping its id)."
    ),
    compute=daily.customer_segments_rows,
    resources=("models",),
    summarize=daily.summarize_segments,
)

SEGMENT_MIGRATIONS_TABLE = DailyTable(
    name="segment_migrations",
    group=GROUP,
    kinds=("sql",),
    deps=("customer_segments",),
    description=(
        "Customers moving from segment to segment day over day: counts per (from, to) "
        "pair, new customers with from_segment_id null. Source: "
        "sql/segmentation/segment_migrations.sql."
    ),
    sql="segmentation/segment_migrations",
    summarize=sql_summary("segmentation/segment_migrations_summary"),
)

SEGMENT_PROFILES_TABLE = DailyTable(
    name="segment_profiles",
    group=GROUP,
    kinds=("scikitlearn", "matplotlib"),
    deps=("customer_segments", "customer_features"),
    description=(
        "Per segment and day: size and share, mean and median of the key features against "
        "the whole base, lift, the features that set it apart most, its name, readable "
        "rules from a shallow surrogate decision tree (with the tree's fidelity), and the "
        "share of each age band, gender and country against the whole base "
        "(attribute_shares; descriptive, not used by the model). Plots (last day of the "
        "run): 2-D projection, profile heatmap, attribute shares, segment sizes over time."
    ),
    compute=daily.segment_profiles_rows,
    resources=("models", "plots"),
    summarize=daily.summarize_profiles,
)

SEGMENTATION_TABLES: tuple[DailyTable, ...] = (
    SEGMENTATION_MODEL_TABLE,
    CUSTOMER_SEGMENTS_TABLE,
    SEGMENT_MIGRATIONS_TABLE,
    SEGMENT_PROFILES_TABLE,
)


def build_segmentation_assets(
    partitions_def: DailyPartitionsDefinition,
) -> list[AssetsDefinition]:
    """The segmentation assets on the shared daily partitions."""
    return [daily_table_asset(table, partitions_def) for table in SEGMENTATION_TABLES]
