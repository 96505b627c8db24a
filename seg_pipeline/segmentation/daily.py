"""What the segmentation's daily tables hold, as plain functions (connection and day in, frame
out), and the metadata of their runs.

- ``segmentation_model``: which stored model version is in force each day (refitting when asked,
  when the settings changed or when the model is too old);
- ``customer_segments``: every customer's stable segment, beside the RFM baseline;
- ``segment_profiles``: size, profile, name and surrogate-tree rules of each segment.

scikit-learn, SciPy and matplotlib load with the model and plot modules when these run.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import duckdb
import numpy as np
import polars as pl
from dagster import Config, MetadataValue, get_dagster_logger
from pydantic import Field

from seg_pipeline.metadata import PlotFolder, markdown_table
from seg_pipeline.models.store import ModelStore
from seg_pipeline.resources import query_frame, read_sql, table_exists
from seg_pipeline.segmentation.config import SegmentationConfig
from seg_pipeline.tables import row_of_day

# Customers drawn (seeded) for the 2-D projection plot and for fitting the surrogate tree.
PROJECTION_POINTS = 5_000
SURROGATE_ROWS = 100_000
# Depth of the surrogate tree: at 3 two segments that differ in several features at once
# (loyal and lapsing customers) shared one leaf (fidelity 0.78 on the test month); 4 gives
# each its own rule of at most four conditions (fidelity 0.96).
SURROGATE_DEPTH = 4
# Days of segment sizes shown by the sizes-over-time plot.
SIZES_PLOT_DAYS = 90
# Known categories per attribute in the metadata's share tables (the rest are "other").
SHARE_TABLE_CATEGORIES = 10

MODEL_DAY_SCHEMA = {
    "as_of_date": pl.Date,
    "model_version": pl.String,
    "fitted_on": pl.Date,
    "model_age_days": pl.Int64,
    "refitted": pl.Boolean,
    "refit_reason": pl.String,
    "n_segments": pl.Int64,
}


class SegmentationModelConfig(Config):
    """Per-run options of segmentation_model."""

    force_refit: bool = Field(
        default=False,
        description="refit on every day of the run even if the model in force is young enough",
    )


def _model_of_day(conn: duckdb.DuckDBPyConnection, models: ModelStore, day: date) -> Any:
    from seg_pipeline.segmentation.model import load_model

    return load_model(conn, models, row_of_day(conn, "segmentation_model", day)["model_version"])


def has_model(conn: duckdb.DuckDBPyConnection, day: date) -> bool:
    """Whether a segmentation model is in force on ``day`` (none before the minimum history).

    Raises
    ------
    LookupError
        When segmentation_model was not materialized for ``day``.
    """
    if table_exists(conn, "segmentation_model"):
        rows = query_frame(conn, read_sql("segmentation/model_days"), {"as_of_date": day})
        if rows["days"][0] > 0:
            return rows["models"][0] > 0
    raise LookupError(f"segmentation_model has no partition {day}: materialize it first")


NO_MODEL_YET = (
    "no segmentation model before {first} (min_history_days {days} after the first "
    "customer_features day): no segments yet"
)


def segmentation_model_rows(
    conn: duckdb.DuckDBPyConnection,
    day: date,
    settings: SegmentationModelConfig,
    models: ModelStore,
    segmentation: SegmentationConfig,
) -> pl.DataFrame:
    """The ``segmentation_model`` row of ``day``: the version in force, refitted first if the
    refit rule (:func:`~seg_pipeline.segmentation.model.refit_reason`) says so."""
    from seg_pipeline.segmentation import model as sm

    current = sm.model_in_force(conn, models, day)
    if current is None:
        first = sm.first_model_day(conn, segmentation)
        if first is None or day < first:
            # a young history: the day's partition holds a row without a model
            get_dagster_logger().info(
                f"segmentation_model {day}: "
                + NO_MODEL_YET.format(first=first, days=segmentation.min_history_days)
            )
            return pl.DataFrame(
                [{"as_of_date": day, "model_age_days": None, "refitted": False}],
                schema=MODEL_DAY_SCHEMA,
            )
    reason = sm.refit_reason(current, day, segmentation, settings.force_refit)
    if reason is not None:
        training, window_start = sm.training_rows(conn, day, segmentation)
        current = sm.fit_model(
            training,
            sm.features_of_day(conn, day),
            segmentation,
            day,
            window_start,
            current,
            sm.next_segment_id(conn, models),
        )
        current.info["refit_reason"] = reason
        sm.save_model(conn, models, current)
        get_dagster_logger().info(
            f"segmentation_model {day}: refit ({reason}) -> {current.version}, "
            f"{len(current.segment_ids)} segments"
        )
    assert current is not None
    # a re-run of a refit day keeps that day's fit: the row stays the same
    refitted = current.fitted_on == day
    row = {
        "as_of_date": day,
        "model_version": current.version,
        "fitted_on": current.fitted_on,
        "model_age_days": (day - current.fitted_on).days,
        "refitted": refitted,
        "refit_reason": current.info.get("refit_reason") if refitted else None,
        "n_segments": len(current.segment_ids),
    }
    return pl.DataFrame([row], schema=MODEL_DAY_SCHEMA)


def summarize_model(
    conn: duckdb.DuckDBPyConnection,
    start: date,
    end: date,
    last: pl.DataFrame,
    settings: SegmentationModelConfig,
    models: ModelStore,
    segmentation: SegmentationConfig,
    plots: PlotFolder,
) -> dict[str, Any]:
    """Metadata: the model in force on the run's last day (K scores, segments, how they
    continued the previous model's), with its K-selection curves and dendrogram."""
    from seg_pipeline.segmentation import plots as draw
    from seg_pipeline.segmentation.model import first_model_day

    if not has_model(conn, end):
        first = first_model_day(conn, segmentation)
        return {"model": NO_MODEL_YET.format(first=first, days=segmentation.min_history_days)}
    model = _model_of_day(conn, models, end)
    refits = query_frame(
        conn,
        read_sql("segmentation/segmentation_model_refits"),
        {"start_date": start, "end_date": end},
    )
    meta: dict[str, Any] = {
        "model_version": model.version,
        "fitted_on": model.fitted_on.isoformat(),
        "algorithm": model.config.algorithm,
        "features": MetadataValue.json(list(model.config.features)),
        "n_segments": len(model.segment_ids),
        "k_selection": model.fit.selection,
        "chosen_k": int(model.fit.chosen_k),
        "train_rows": model.train_rows,
        "training_window": f"{model.window_start}..{model.fitted_on}",
        "refits_in_run": int(refits["refits"][0]),
        "segment_names": MetadataValue.json({str(k): v for k, v in model.names.items()}),
        "carried_segments": MetadataValue.json({str(k): v for k, v in model.match.carried.items()}),
        "new_segments": MetadataValue.json(model.match.new),
        "vanished_segments": MetadataValue.json(model.match.vanished),
        "renamed_segments": MetadataValue.json(
            {str(k): v for k, v in model.info.get("renamed", {}).items()}
        ),
        "k_scores": MetadataValue.md(
            markdown_table(
                model.fit.k_scores.columns, [tuple(r) for r in model.fit.k_scores.iter_rows()]
            )
        ),
    }
    folder = f"segmentation_model/{model.version}"
    plots.attach(meta, folder, "k_selection", draw.k_selection_plot(model.fit.k_scores), "K choice")
    if model.fit.linkage is not None:
        png = draw.dendrogram_plot(model.fit.linkage)
        plots.attach(meta, folder, "dendrogram", png, "Dendrogram")
    return meta


def assign_segments(
    conn: duckdb.DuckDBPyConnection, model: Any, features: pl.DataFrame, day: date
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


def customer_segments_rows(
    conn: duckdb.DuckDBPyConnection, day: date, settings: None, models: ModelStore
) -> pl.DataFrame:
    """Every customer's segment on ``day`` from the model in force that day (no rows before
    the first model)."""
    from seg_pipeline.segmentation.model import features_of_day

    if not has_model(conn, day):
        return no_segments(conn, day)
    model = _model_of_day(conn, models, day)
    return assign_segments(conn, model, features_of_day(conn, day), day)


def no_segments(conn: duckdb.DuckDBPyConnection, day: date) -> pl.DataFrame:
    """customer_segments' columns without rows (a day before the first model)."""
    rfm = query_frame(conn, read_sql("segmentation/customer_rfm"), {"as_of_date": day}).head(0)
    base = pl.DataFrame(
        schema={
            "as_of_date": pl.Date,
            "customer_id": rfm.schema["customer_id"],
            "segment_id": pl.Int64,
            "segment_name": pl.String,
            "distance_to_centre": pl.Float64,
            "model_version": pl.String,
        }
    )
    return base.join(rfm.drop("as_of_date"), on="customer_id", how="left")


def segments_of_day(conn: duckdb.DuckDBPyConnection, day: date) -> pl.DataFrame:
    """customer_id and segment_id of every customer on ``day``, sorted by customer."""
    return query_frame(conn, read_sql("segmentation/segments_of_day"), {"as_of_date": day})


def summarize_segments(
    conn: duckdb.DuckDBPyConnection,
    start: date,
    end: date,
    last: pl.DataFrame,
    settings: None,
    models: ModelStore,
) -> dict[str, Any]:
    """Metadata: segment and RFM sizes on the run's last day, and how stable the segments
    were against the day before (ARI, share keeping its id)."""
    from seg_pipeline.segmentation.identity import stability

    if last is None or last.is_empty():
        return {"segments": f"none on {end}: no segmentation model in force yet"}
    sizes = (
        last.group_by("segment_id", "segment_name")
        .agg(pl.len().alias("customers"))
        .sort("segment_id")
    )
    rfm = last.group_by("rfm_segment").agg(pl.len().alias("customers")).sort("rfm_segment")
    meta: dict[str, Any] = {
        "model_version": last["model_version"][0],
        "segment_sizes": MetadataValue.md(
            markdown_table(sizes.columns, [tuple(r) for r in sizes.iter_rows()])
        ),
        "rfm_baseline_sizes": MetadataValue.md(
            markdown_table(rfm.columns, [tuple(r) for r in rfm.iter_rows()])
        ),
    }
    previous_day = end - timedelta(days=1)
    previous = segments_of_day(conn, previous_day)
    if not previous.is_empty():
        meta["stability_compared_with"] = previous_day.isoformat()
        current = last.select("customer_id", "segment_id")
        for key, value in stability(previous, current).items():
            meta[f"stability_{key}"] = value
    return meta


def profile_day(
    features: pl.DataFrame, segments: pl.DataFrame, model: Any, day: date
) -> pl.DataFrame:
    """segment_profiles rows of ``day``: profile, name and surrogate-tree rules per segment,
    with the surrogate tree's fidelity."""
    from seg_pipeline.segmentation.profiles import (
        PROFILE_FEATURES,
        segment_profiles,
        surrogate_rules,
    )

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
    rules = surrogate.by_segment()
    profile = profile.with_columns(
        pl.lit(day).alias("as_of_date"),
        pl.col("segment_id")
        .map_elements(lambda s: model.names.get(int(s), f"Segment {s}"), return_dtype=pl.String)
        .alias("segment_name"),
        pl.col("segment_id")
        .map_elements(lambda s: rules_text(rules.get(int(s), [])), return_dtype=pl.String)
        .alias("rules"),
        pl.lit(round(float(surrogate.fidelity), 4)).alias("rules_fidelity"),
        pl.lit(model.version).alias("model_version"),
    )
    first = ["as_of_date", "segment_id", "segment_name", "n_customers", "share", "rules"]
    return profile.select(first + [c for c in profile.columns if c not in first])


def rules_text(rules: list[dict[str, Any]], most: int = 3) -> str:
    """The segment's largest surrogate-tree rules, with their precision, joined by OR."""
    ranked = sorted(rules, key=lambda r: (not r["predicts_segment"], -r["support"]))[:most]
    return " OR ".join(f"({r['rule']}) [precision {r['precision']:.0%}]" for r in ranked)


def share_markdown(
    profiles: pl.DataFrame,
    attribute: str,
    names: dict[int, str],
    max_categories: int = SHARE_TABLE_CATEGORIES,
) -> str | None:
    """A markdown table of one attribute's shares in % (a row for all customers, then one per
    segment, a column per category), or ``None`` when it was not profiled."""
    from seg_pipeline.segmentation.profiles import attribute_share_table

    table = attribute_share_table(profiles, attribute, max_categories)
    if table.is_empty():
        return None
    rows = [
        (
            "all customers" if seg is None else f"{seg}: {names.get(seg, '')}",
            *(f"{100 * v:.1f}%" for v in values),
        )
        for seg, *values in table.iter_rows()
    ]
    return markdown_table(["segment", *table.columns[1:]], rows)


def segment_profiles_rows(
    conn: duckdb.DuckDBPyConnection, day: date, settings: None, models: ModelStore
) -> pl.DataFrame | None:
    """The profile of every segment on ``day`` (``None`` before the first model)."""
    from seg_pipeline.segmentation.model import features_of_day

    if not has_model(conn, day):
        return None
    model = _model_of_day(conn, models, day)
    return profile_day(features_of_day(conn, day), segments_of_day(conn, day), model, day)


def summarize_profiles(
    conn: duckdb.DuckDBPyConnection,
    start: date,
    end: date,
    last: pl.DataFrame,
    settings: None,
    models: ModelStore,
    plots: PlotFolder,
) -> dict[str, Any]:
    """Metadata: the last day's segments and rules, the share of each age band, gender and
    country per segment against all customers (a table per attribute), with the 2-D
    projection, profile heatmap, attribute shares and segment sizes over time."""
    from seg_pipeline.segmentation import plots as draw
    from seg_pipeline.segmentation.profiles import PROFILE_ATTRIBUTES, PROFILE_FEATURES

    if last is None or last.is_empty():
        return {"segments": f"none on {end}: no segmentation model in force yet"}
    model = _model_of_day(conn, models, end)
    table = last.select("segment_id", "segment_name", "n_customers", "share", "rules")
    meta: dict[str, Any] = {
        "model_version": model.version,
        "surrogate_tree_fidelity": float(last["rules_fidelity"][0]),
        "segments": MetadataValue.md(
            markdown_table(table.columns, [tuple(r) for r in table.iter_rows()])
        ),
    }
    names = dict(zip(last["segment_id"], last["segment_name"], strict=True))
    for attribute in PROFILE_ATTRIBUTES:
        shares = share_markdown(last, attribute, names)
        if shares is not None:
            meta[f"{attribute}_shares"] = MetadataValue.md(shares)
    shown = query_frame(
        conn,
        read_sql("segmentation/projection_sample"),
        {"as_of_date": end, "seed": model.config.seed, "max_rows": PROJECTION_POINTS},
    )
    sizes = query_frame(
        conn,
        read_sql("segmentation/segment_sizes"),
        {"start_date": end - timedelta(days=SIZES_PLOT_DAYS - 1), "end_date": end},
    )
    folder = f"segment_profiles/{end.isoformat()}"
    projection = draw.projection_scatter(
        model.transform(shown),
        shown["segment_id"].to_numpy(),
        model.names,
        model.config.seed,
        max_points=PROJECTION_POINTS,
    )
    plots.attach(meta, folder, "projection", projection, "Segments in 2-D")
    heatmap = draw.profile_heatmap(last, list(PROFILE_FEATURES))
    plots.attach(meta, folder, "profile_heatmap", heatmap, "Profiles")
    shares_png = draw.attribute_shares_plot(last, list(PROFILE_ATTRIBUTES))
    plots.attach(meta, folder, "attribute_shares", shares_png, "Age band, gender, country shares")
    plots.attach(meta, folder, "sizes_over_time", draw.segment_sizes_plot(sizes), "Segment sizes")
    return meta
