"""Drift of a model's inputs and outputs since it was fitted: the population stability index
(PSI) of every model feature and of the segment shares, as plain functions (frames in, frame
out) and the ``model_drift`` daily table's compute and metadata.

PSI compares a reference distribution (``e``: the model's fit day) with a current one (``a``:
the day measured) over fixed bins: ``sum((a_i - e_i) * ln(a_i / e_i))`` over the bins' shares,
each share at least ``epsilon`` so an empty bin counts as rare rather than infinite. A numeric
feature's bins are the deciles of the reference (edges that coincide, as in zero-heavy counts,
merged) plus a bin of its nulls; the segment shares' bins are the segments. Identical
distributions give 0; the usual reading is below 0.1 stable, 0.1-0.2 a moderate shift, above
0.2 a significant one, the default threshold of :class:`DriftConfig`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import duckdb
import numpy as np
import polars as pl
from dagster import ConfigurableResource, MetadataValue
from pydantic import Field

from seg_pipeline.metadata import PlotFolder, markdown_table
from seg_pipeline.models.store import ModelStore
from seg_pipeline.resources import query_frame, read_sql, table_exists

SEGMENTATION_KIND = "segmentation"
# The pseudo-feature of a segmentation model's output: the customers' shares of its segments.
SEGMENT_SHARES = "segment_shares"

DRIFT_SCHEMA = {
    "as_of_date": pl.Date,
    "model_kind": pl.String,
    "model_version": pl.String,
    "reference_date": pl.Date,
    "feature": pl.String,
    "psi": pl.Float64,
    "threshold": pl.Float64,
    "drifted": pl.Boolean,
}

DRIFT_COLUMNS: dict[str, str] = {
    "as_of_date": "The day measured (the partition).",
    "model_kind": "Kind of the model in force that day (model_registry.kind).",
    "model_version": "The model version in force that day.",
    "reference_date": "The model's fit day: the distribution the day is compared with.",
    "feature": f"A model feature (customer_features column), or {SEGMENT_SHARES}: the "
    "customers' shares of the model's segments.",
    "psi": "Population stability index between the reference day and the day measured.",
    "threshold": "The PSI above which the feature counts as drifted (drift resource).",
    "drifted": "psi > threshold: the sensor drift_retraining_sensor requests a refit.",
}


class DriftConfig(ConfigurableResource):
    """How model drift is measured and when it counts (resource ``drift``)."""

    psi_threshold: float = Field(
        default=0.2,
        gt=0,
        description=(
            "PSI above which a feature (or the segment shares) counts as drifted and a refit "
            "is requested. 0.2 is the usual rule of thumb (below 0.1 stable, 0.1-0.2 "
            "moderate, above 0.2 significant): on the generated data a model's week stays "
            "below 0.1, a changed behaviour goes above within days."
        ),
    )
    bins: int = Field(
        default=10, ge=2, description="quantile bins of a numeric feature (from the reference)"
    )
    epsilon: float = Field(
        default=1e-4, gt=0, description="smallest share of a bin in the PSI (no log of zero)"
    )


def _shares(counts: np.ndarray, epsilon: float) -> np.ndarray:
    total = counts.sum()
    shares = counts / total if total > 0 else np.zeros_like(counts, dtype=np.float64)
    return np.maximum(shares, epsilon)


def psi_of_counts(expected: np.ndarray, actual: np.ndarray, epsilon: float = 1e-4) -> float:
    """PSI of two count vectors over the same bins."""
    e = _shares(np.asarray(expected, dtype=np.float64), epsilon)
    a = _shares(np.asarray(actual, dtype=np.float64), epsilon)
    return float(np.sum((a - e) * np.log(a / e)))


def quantile_edges(reference: np.ndarray, bins: int = 10) -> np.ndarray:
    """Inner bin edges: the reference's quantiles, coinciding edges merged."""
    values = reference[~np.isnan(reference)]
    if values.size == 0:
        return np.zeros(0)
    return np.unique(np.quantile(values, np.linspace(0.0, 1.0, bins + 1)[1:-1]))


def binned(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts per bin: ``len(edges) + 1`` value bins (a value on an edge goes above it), then
    one bin of the nulls."""
    nulls = np.isnan(values)
    index = np.searchsorted(edges, values[~nulls], side="right")
    counts = np.bincount(index, minlength=edges.size + 1).astype(np.float64)
    return np.append(counts, float(nulls.sum()))


def psi(
    expected: Sequence[float] | np.ndarray,
    actual: Sequence[float] | np.ndarray,
    bins: int = 10,
    epsilon: float = 1e-4,
) -> float:
    """PSI of a numeric variable: ``actual`` against ``expected`` over the quantile bins of
    ``expected`` (nulls/NaN a bin of their own)."""
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    edges = quantile_edges(e, bins)
    return psi_of_counts(binned(e, edges), binned(a, edges), epsilon)


def share_psi(
    expected: Mapping[Any, float], actual: Mapping[Any, float], epsilon: float = 1e-4
) -> float:
    """PSI of a categorical variable given as counts per category (a category missing on one
    side counts 0 there)."""
    keys = sorted(set(expected) | set(actual), key=str)
    return psi_of_counts(
        np.array([expected.get(k, 0) for k in keys], dtype=np.float64),
        np.array([actual.get(k, 0) for k in keys], dtype=np.float64),
        epsilon,
    )


def feature_psi(
    reference: pl.DataFrame,
    current: pl.DataFrame,
    features: Sequence[str],
    bins: int = 10,
    epsilon: float = 1e-4,
) -> pl.DataFrame:
    """PSI of every feature of ``features`` (columns of both frames): columns feature, psi."""
    values = [
        psi(
            reference[f].cast(pl.Float64).to_numpy(),
            current[f].cast(pl.Float64).to_numpy(),
            bins,
            epsilon,
        )
        for f in features
    ]
    return pl.DataFrame(
        {"feature": list(features), "psi": values}, schema={"feature": pl.String, "psi": pl.Float64}
    )


def drift_rows(
    day: date,
    kind: str,
    model_version: str,
    reference_date: date,
    measured: pl.DataFrame,
    threshold: float,
) -> pl.DataFrame:
    """model_drift rows of one model and day from ``measured`` (columns feature, psi)."""
    return measured.select(
        pl.lit(day, dtype=pl.Date).alias("as_of_date"),
        pl.lit(kind, dtype=pl.String).alias("model_kind"),
        pl.lit(model_version, dtype=pl.String).alias("model_version"),
        pl.lit(reference_date, dtype=pl.Date).alias("reference_date"),
        pl.col("feature"),
        pl.col("psi").round(6),
        pl.lit(threshold, dtype=pl.Float64).alias("threshold"),
        (pl.col("psi") > threshold).alias("drifted"),
    ).cast(DRIFT_SCHEMA)


def segmentation_drift(
    conn: duckdb.DuckDBPyConnection, day: date, models: ModelStore, drift: DriftConfig
) -> pl.DataFrame:
    """Drift of the segmentation model in force on ``day``: PSI of each of its features and
    of its segment shares, between its fit day and ``day``. No rows when no model is in force
    that day (before the minimum history) or the fit day's rows are gone."""
    empty = pl.DataFrame(schema=DRIFT_SCHEMA)
    if not table_exists(conn, "segmentation_model"):
        return empty
    model = query_frame(conn, read_sql("monitoring/segmentation_model_of_day"), {"as_of_date": day})
    if model.is_empty():
        return empty
    version, fitted_on = model.row(0)
    registered = models.version(conn, version)
    if registered is None:
        raise LookupError(f"segmentation model {version} (in force on {day}) is not registered")
    features = list(registered.params["features"])
    of_day = read_sql("segmentation/customer_features_of_day")
    reference = query_frame(conn, of_day, {"as_of_date": fitted_on})
    current = query_frame(conn, of_day, {"as_of_date": day})
    if reference.is_empty() or current.is_empty():
        return empty
    measured = feature_psi(reference, current, features, drift.bins, drift.epsilon)
    counts = read_sql("monitoring/segment_counts")
    before = query_frame(conn, counts, {"as_of_date": fitted_on})
    now = query_frame(conn, counts, {"as_of_date": day})
    if not before.is_empty() and not now.is_empty():
        shares = share_psi(dict(before.iter_rows()), dict(now.iter_rows()), epsilon=drift.epsilon)
        measured = pl.concat(
            [measured, pl.DataFrame({"feature": [SEGMENT_SHARES], "psi": [shares]})]
        )
    return drift_rows(day, SEGMENTATION_KIND, version, fitted_on, measured, drift.psi_threshold)


def model_drift_rows(
    conn: duckdb.DuckDBPyConnection,
    day: date,
    settings: None,
    models: ModelStore,
    drift: DriftConfig,
) -> pl.DataFrame:
    """The model_drift rows of ``day`` (the segmentation model in force)."""
    return segmentation_drift(conn, day, models, drift)


def drift_tag(rows: pl.DataFrame) -> str:
    """``feature=psi`` pairs of the drifted rows, largest first (a run tag)."""
    drifted = rows.filter(pl.col("drifted")).sort("psi", "feature", descending=[True, False])
    return ",".join(f"{f}={p:.2f}" for f, p in drifted.select("feature", "psi").iter_rows())


def summarize_drift(
    conn: duckdb.DuckDBPyConnection,
    start: date,
    end: date,
    last: pl.DataFrame | None,
    settings: None,
    plots: PlotFolder,
    drift: DriftConfig,
) -> dict[str, Any]:
    """Metadata: the run's drift summary and the last day's PSI per feature (a table and a bar
    chart with the threshold line)."""
    from seg_pipeline.monitoring.plots import psi_bar_plot

    summary = query_frame(
        conn, read_sql("monitoring/model_drift_summary"), {"start_date": start, "end_date": end}
    )
    meta: dict[str, Any] = dict(summary.row(0, named=True)) if summary.height else {}
    meta["psi_threshold"] = drift.psi_threshold
    if last is None or last.is_empty():
        meta["drift_measured"] = f"no model in force on {end}: nothing measured"
        return meta
    version = last["model_version"][0]
    meta.update(
        {
            "model_version": version,
            "reference_date": last["reference_date"][0].isoformat(),
            "drifted_features": drift_tag(last) or "none",
            "psi": MetadataValue.md(
                markdown_table(
                    ["feature", "psi", "drifted"],
                    [tuple(r) for r in last.select("feature", "psi", "drifted").iter_rows()],
                )
            ),
        }
    )
    png = psi_bar_plot(
        last, drift.psi_threshold, f"{version} on {end} vs {last['reference_date'][0]}"
    )
    plots.attach(meta, f"model_drift/{end.isoformat()}", "psi", png, "PSI per feature")
    return meta
