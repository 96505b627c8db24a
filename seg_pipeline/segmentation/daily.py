"""What the daily segmentation assets compute, as plain functions (frames in, frames out)."""

from __future__ import annotations

from datetime import date
from typing import Any

import duckdb
import numpy as np
import polars as pl

from seg_pipeline.resources import query_frame, read_sql
from seg_pipeline.segmentation.model import SegmentationModel
from seg_pipeline.segmentation.profiles import PROFILE_FEATURES, segment_profiles, surrogate_rules

# Customers drawn (seeded) for the 2-D projection plot and for fitting the surrogate tree.
PROJECTION_POINTS = 5_000
SURROGATE_ROWS = 100_000
# Depth of the surrogate tree: at 3 two segments that differ in several features at once
# (loyal and lapsing customers) shared one leaf (fidelity 0.78 on the test month); 4 gives
# each its own rule of at most four conditions (fidelity 0.96).
SURROGATE_DEPTH = 4


def assign_segments(
    conn: duckdb.DuckDBPyConnection, model: SegmentationModel, features: pl.DataFrame, day: date
) -> pl.DataFrame:
    """customer_segments rows of ``day``: model segments, distances, RFM baseline."""
    x = model.transform(features)
    labels = np.asarray(model.fit.estimator.predict(x), dtype=np.int64)
    segment_ids = model.segment_ids_of(labels)
    distance = np.sqrt(((x - model.fit.centroids[labels]) ** 2).sum(axis=1))
    names = pl.DataFrame(
        {
            "segment_id": list(model.names),
            "segment_name": list(model.names.values()),
        },
        schema={"segment_id": pl.Int64, "segment_name": pl.String},
    )
    rfm = query_frame(conn, read_sql("segmentation/customer_rfm"), {"as_of_date": day})
    frame = (
        pl.DataFrame(
            {
                "customer_id": features["customer_id"],
                "segment_id": pl.Series(segment_ids, dtype=pl.Int64),
                "distance_to_centre": pl.Series(distance, dtype=pl.Float64).round(4),
            }
        )
        .join(names, on="segment_id", how="left")
        .with_columns(
            pl.lit(day, dtype=pl.Date).alias("as_of_date"),
            pl.lit(model.version, dtype=pl.String).alias("model_version"),
        )
        .select(
            "as_of_date",
            "customer_id",
            "segment_id",
            "segment_name",
            "distance_to_centre",
            "model_version",
        )
    )
    return frame.join(rfm.drop("as_of_date"), on="customer_id", how="left")


def profile_day(
    features: pl.DataFrame, segments: pl.DataFrame, model: SegmentationModel, day: date
) -> tuple[pl.DataFrame, dict[int, Any], float]:
    """segment_profiles rows of ``day``: profile, name and surrogate-tree rules per segment."""
    profile = segment_profiles(features, segments)
    joined = features.join(segments, on="customer_id", how="inner")
    if joined.height > SURROGATE_ROWS:
        joined = joined.sample(SURROGATE_ROWS, seed=model.config.seed)
    surrogate = surrogate_rules(
        joined,
        joined["segment_id"].to_numpy(),
        list(PROFILE_FEATURES),
        max_depth=SURROGATE_DEPTH,
        seed=model.config.seed,
    )
    rules, fidelity = surrogate.by_segment(), round(float(surrogate.fidelity), 4)
    profile = profile.with_columns(
        pl.lit(day).alias("as_of_date"),
        pl.col("segment_id")
        .map_elements(lambda s: model.names.get(int(s), f"Segment {s}"), return_dtype=pl.String)
        .alias("segment_name"),
        pl.col("segment_id")
        .map_elements(lambda s: rules_text(rules.get(int(s), [])), return_dtype=pl.String)
        .alias("rules"),
        pl.lit(model.version).alias("model_version"),
    )
    first = ["as_of_date", "segment_id", "segment_name", "n_customers", "share", "rules"]
    return profile.select(first + [c for c in profile.columns if c not in first]), rules, fidelity


def rules_text(rules: list[dict[str, Any]], most: int = 3) -> str:
    """The segment's largest surrogate-tree rules, with their precision, joined by OR."""
    ranked = sorted(rules, key=lambda r: (not r["predicts_segment"], -r["support"]))[:most]
    return " OR ".join(f"({r['rule']}) [precision {r['precision']:.0%}]" for r in ranked)
