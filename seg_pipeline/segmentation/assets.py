"""Segmentation assets: the model in force each day, customers' segments, migrations, profiles.

Thin wrappers over :mod:`seg_pipeline.segmentation.model` and :mod:`.daily`; each loops over the
days of its run's partition window inside one transaction, so a backfill is one run and a failed
run leaves every table as it was. Plots are drawn once per run, for its last day. scikit-learn,
SciPy, MiniSom and matplotlib are imported inside the assets, so loading the definitions (the
UI, every run, the CLI) does not pay for them.
"""

from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    Config,
    ConfigurableResource,
    DailyPartitionsDefinition,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
)
from pydantic import Field

from seg_pipeline.assets_common import warehouse_asset_options
from seg_pipeline.metadata import markdown_table, window_metadata
from seg_pipeline.partitions import days_between, window_dates
from seg_pipeline.resources import (
    Warehouse,
    query_frame,
    read_sql,
    table_exists,
    transaction,
    write_frame,
)
from seg_pipeline.segmentation.config import DEFAULT_FEATURES, SegmentationConfig

if TYPE_CHECKING:
    from seg_pipeline.segmentation.model import SegmentationModel

GROUP = "segmentation"
DEFAULT_ALGORITHM = "kmeans"
# Recovery the evaluation check expects on generated data: the default algorithm, the others.
RECOVERY_TARGET = {"default": 0.8, "other": 0.6}


class SegmentationSettings(ConfigurableResource):
    """Segmentation settings shared by the segmentation assets (see SegmentationConfig)."""

    features: list[str] = Field(default=list(DEFAULT_FEATURES), description="features used")
    algorithm: str = Field(
        default=DEFAULT_ALGORITHM,
        description="kmeans | minibatch_kmeans | ward | hdbscan | dbscan | gmm | som",
    )
    n_segments: int | None = Field(default=None, description="fixed K; empty: choose K")
    k_min: int = Field(default=3, description="smallest K tried")
    k_max: int = Field(default=10, description="largest K tried")
    pca_components: int | None = Field(default=None, description="PCA after scaling")
    seed: int = Field(default=42, description="seed of every random step")
    window_days: int = Field(default=7, description="rolling training window in days")
    max_fit_rows: int = Field(default=200_000, description="training rows (sampled)")
    max_model_age_days: int = Field(default=7, description="refit when the model is older")

    def to_config(self) -> SegmentationConfig:
        """These settings over the defaults of every other SegmentationConfig field."""
        fields = self.model_dump()
        return SegmentationConfig(**{**fields, "features": tuple(fields["features"])})


class SegmentationModelConfig(Config):
    """Per-run options of segmentation_model."""

    force_refit: bool = Field(
        default=False,
        description="refit on every day of the run even if the model in force is young enough",
    )


MODEL_DAY_SCHEMA = {
    "as_of_date": pl.Date,
    "model_version": pl.String,
    "fitted_on": pl.Date,
    "model_age_days": pl.Int64,
    "refitted": pl.Boolean,
    "refit_reason": pl.String,
    "n_segments": pl.Int64,
}


def _png(meta: dict[str, Any], folder: Path, name: str, png: bytes, alt: str) -> None:
    from seg_pipeline.segmentation import plots

    path = plots.write_png(png, folder / f"{name}.png")
    meta[f"plot_{name}"] = MetadataValue.md(plots.png_markdown(png, alt))
    meta[f"plot_{name}_file"] = MetadataValue.path(str(path))


def _model_of_day(conn: Any, day: date) -> "SegmentationModel":
    from seg_pipeline.segmentation import model as sm

    rows = (
        conn.execute(
            "SELECT model_version FROM segmentation_model WHERE as_of_date = $d", {"d": day}
        ).fetchall()
        if table_exists(conn, "segmentation_model")
        else []
    )
    if not rows:
        raise LookupError(f"segmentation_model has no partition {day}: materialize it first")
    return sm.load_model(conn, rows[0][0])


def build_segmentation_assets(
    partitions_def: DailyPartitionsDefinition, plots_dir: Path
) -> list[AssetsDefinition]:
    """The segmentation assets on the shared daily partitions; PNGs go under ``plots_dir``."""
    common = warehouse_asset_options(GROUP, partitions_def)

    @asset(
        name="segmentation_model",
        kinds={"duckdb", "scikitlearn"},
        deps=[AssetKey("customer_features")],
        description=(
            "The segmentation model in force each day: preprocessing (impute, log1p, robust "
            "scaling, optional PCA) and a clustering algorithm (K-Means by default; "
            "MiniBatchKMeans, Ward, HDBSCAN/DBSCAN, Gaussian mixture, self-organising map), "
            "K chosen over a range by silhouette, Calinski-Harabasz and Davies-Bouldin (BIC "
            "for mixtures). Refitted on the customer_features of a rolling window when asked "
            "(config force_refit, job refit_segmentation), when the settings change or when "
            "the model is older than max_model_age_days; a refit's segments are matched to "
            "the previous model's by shared members (Hungarian) so ids and names carry over. "
            "Every version is stored in table segmentation_models. Source: "
            "sql/segmentation/segmentation_training.sql."
        ),
        **common,
    )
    def segmentation_model(
        context: AssetExecutionContext,
        warehouse: Warehouse,
        segmentation: SegmentationSettings,
        config: SegmentationModelConfig,
    ) -> MaterializeResult:
        from seg_pipeline.segmentation import model as sm
        from seg_pipeline.segmentation import plots

        start, end = window_dates(context)
        settings = segmentation.to_config()
        fitted: list[tuple[sm.SegmentationModel, str]] = []
        with warehouse.connection() as conn, transaction(conn):
            sm.ensure_registry(conn)
            for day in days_between(start, end):
                current = sm.model_in_force(conn, day)
                reason = sm.refit_reason(current, day, settings, config.force_refit)
                if reason is not None:
                    training, window_start = sm.training_rows(conn, day, settings)
                    model = sm.fit_model(
                        training,
                        sm.features_of_day(conn, day),
                        settings,
                        day,
                        window_start,
                        current,
                        sm.next_segment_id(conn),
                    )
                    model.info["refit_reason"] = reason
                    sm.save_model(conn, model)
                    fitted.append((model, reason))
                    context.log.info(
                        f"segmentation_model {day}: refit ({reason}) -> {model.version}, "
                        f"{len(model.segment_ids)} segments"
                    )
                    current = model
                assert current is not None
                row = {
                    "as_of_date": day,
                    "model_version": current.version,
                    "fitted_on": current.fitted_on,
                    "model_age_days": (day - current.fitted_on).days,
                    # a re-run of a refit day keeps that day's fit: the row stays the same
                    "refitted": current.fitted_on == day,
                    "refit_reason": current.info.get("refit_reason")
                    if current.fitted_on == day
                    else None,
                    "n_segments": len(current.segment_ids),
                }
                frame = pl.DataFrame([row], schema=MODEL_DAY_SCHEMA)
                write_frame(conn, "segmentation_model", frame, "as_of_date", day)
            meta = window_metadata(conn, "segmentation_model", "as_of_date", start, end)
        model = current
        meta.update(
            {
                "model_version": model.version,
                "fitted_on": model.fitted_on.isoformat(),
                "algorithm": model.config.algorithm,
                "features": MetadataValue.json(list(model.config.features)),
                "n_segments": len(model.segment_ids),
                "k_selection": model.fit.selection,
                "chosen_k": int(model.fit.chosen_k),
                "train_rows": model.train_rows,
                "training_window": f"{model.window_start}..{model.fitted_on}",
                "refits_in_run": len(fitted),
                "segment_names": MetadataValue.json({str(k): v for k, v in model.names.items()}),
                "carried_segments": MetadataValue.json(
                    {str(k): v for k, v in model.match.carried.items()}
                ),
                "new_segments": MetadataValue.json(model.match.new),
                "vanished_segments": MetadataValue.json(model.match.vanished),
                "renamed_segments": MetadataValue.json(
                    {str(k): v for k, v in model.info.get("renamed", {}).items()}
                ),
                "k_scores": MetadataValue.md(
                    markdown_table(
                        model.fit.k_scores.columns,
                        [tuple(r) for r in model.fit.k_scores.iter_rows()],
                    )
                ),
            }
        )
        folder = plots_dir / "segmentation_model" / model.version
        _png(meta, folder, "k_selection", plots.k_selection_plot(model.fit.k_scores), "K choice")
        if model.fit.linkage is not None:
            _png(meta, folder, "dendrogram", plots.dendrogram_plot(model.fit.linkage), "Dendrogram")
        return MaterializeResult(metadata=meta)

    @asset(
        name="customer_segments",
        kinds={"duckdb", "scikitlearn", "sql"},
        deps=[AssetKey("segmentation_model"), AssetKey("customer_features")],
        description=(
            "Every customer's segment each day (stable segment_id and name) from the model in "
            "force that day, with the distance to the segment centre, beside the classic RFM "
            "quintile segmentation as a baseline (sql/segmentation/customer_rfm.sql). "
            "Metadata: segment sizes and day-over-day stability (ARI, share keeping its id)."
        ),
        **common,
    )
    def customer_segments(
        context: AssetExecutionContext, warehouse: Warehouse
    ) -> MaterializeResult:
        from seg_pipeline.segmentation import evaluation
        from seg_pipeline.segmentation import model as sm
        from seg_pipeline.segmentation.daily import assign_segments

        start, end = window_dates(context)
        with warehouse.connection() as conn, transaction(conn):
            for day in days_between(start, end):
                model = _model_of_day(conn, day)
                features = sm.features_of_day(conn, day)
                frame = assign_segments(conn, model, features, day)
                write_frame(conn, "customer_segments", frame, "as_of_date", day)
            meta = window_metadata(conn, "customer_segments", "as_of_date", start, end)
            last = frame.select("customer_id", "segment_id")
            previous_day = end - timedelta(days=1)
            previous = query_frame(
                conn,
                "SELECT customer_id, segment_id FROM customer_segments WHERE as_of_date = $d",
                {"d": previous_day},
            )
        sizes = (
            frame.group_by("segment_id", "segment_name")
            .agg(pl.len().alias("customers"))
            .sort("segment_id")
        )
        rfm = frame.group_by("rfm_segment").agg(pl.len().alias("customers")).sort("rfm_segment")
        meta.update(
            {
                "model_version": model.version,
                "segment_sizes": MetadataValue.md(
                    markdown_table(sizes.columns, [tuple(r) for r in sizes.iter_rows()])
                ),
                "rfm_baseline_sizes": MetadataValue.md(
                    markdown_table(rfm.columns, [tuple(r) for r in rfm.iter_rows()])
                ),
            }
        )
        if not previous.is_empty():
            for key, value in evaluation.stability(previous, last).items():
                meta[f"stability_vs_{previous_day}_{key}"] = value
        return MaterializeResult(metadata=meta)

    @asset(
        name="segment_migrations",
        kinds={"duckdb", "sql"},
        deps=[AssetKey("customer_segments")],
        description=(
            "Customers moving from segment to segment day over day: counts per (from, to) "
            "pair, new customers with from_segment_id null. Source: "
            "sql/segmentation/segment_migrations.sql."
        ),
        **common,
    )
    def segment_migrations(
        context: AssetExecutionContext, warehouse: Warehouse
    ) -> MaterializeResult:
        start, end = window_dates(context)
        sql = read_sql("segmentation/segment_migrations")
        with warehouse.connection() as conn, transaction(conn):
            for day in days_between(start, end):
                frame = query_frame(
                    conn, sql, {"as_of_date": day, "previous_date": day - timedelta(days=1)}
                )
                write_frame(conn, "segment_migrations", frame, "as_of_date", day)
            meta = window_metadata(conn, "segment_migrations", "as_of_date", start, end)
        moved = frame.filter(
            pl.col("from_segment_id").is_not_null()
            & pl.col("to_segment_id").is_not_null()
            & (pl.col("from_segment_id") != pl.col("to_segment_id"))
        )["n_customers"].sum()
        stayed = frame.filter(pl.col("from_segment_id") == pl.col("to_segment_id"))[
            "n_customers"
        ].sum()
        meta.update({"moved_last_day": int(moved or 0), "stayed_last_day": int(stayed or 0)})
        return MaterializeResult(metadata=meta)

    @asset(
        name="segment_profiles",
        kinds={"duckdb", "scikitlearn", "matplotlib"},
        deps=[AssetKey("customer_segments"), AssetKey("customer_features")],
        description=(
            "Per segment and day: size and share, mean and median of the key features against "
            "the whole base, lift, the features that set it apart most, its name, and readable "
            "rules from a shallow surrogate decision tree. Plots (last day of the run): 2-D "
            "projection, profile heatmap, segment sizes over time."
        ),
        **common,
    )
    def segment_profiles_asset(
        context: AssetExecutionContext, warehouse: Warehouse
    ) -> MaterializeResult:
        from seg_pipeline.segmentation import model as sm
        from seg_pipeline.segmentation import plots
        from seg_pipeline.segmentation.daily import PROJECTION_POINTS, profile_day
        from seg_pipeline.segmentation.profiles import PROFILE_FEATURES

        start, end = window_dates(context)
        with warehouse.connection() as conn, transaction(conn):
            for day in days_between(start, end):
                model = _model_of_day(conn, day)
                features = sm.features_of_day(conn, day)
                segments = query_frame(
                    conn,
                    "SELECT customer_id, segment_id FROM customer_segments "
                    "WHERE as_of_date = $d ORDER BY customer_id",
                    {"d": day},
                )
                profile, _, fidelity = profile_day(features, segments, model, day)
                write_frame(conn, "segment_profiles", profile, "as_of_date", day)
            meta = window_metadata(conn, "segment_profiles", "as_of_date", start, end)
            sizes = query_frame(
                conn,
                "SELECT as_of_date, segment_id, any_value(segment_name) AS segment_name, "
                "count(*) AS n_customers FROM customer_segments "
                "WHERE as_of_date BETWEEN $s AND $e GROUP BY ALL ORDER BY ALL",
                {"s": end - timedelta(days=89), "e": end},
            )
        table = profile.select("segment_id", "segment_name", "n_customers", "share", "rules")
        meta.update(
            {
                "model_version": model.version,
                "surrogate_tree_fidelity": fidelity,
                "segments": MetadataValue.md(
                    markdown_table(table.columns, [tuple(r) for r in table.iter_rows()])
                ),
            }
        )
        folder = plots_dir / "segment_profiles" / end.isoformat()
        shown = features.join(segments, on="customer_id", how="inner")
        if shown.height > PROJECTION_POINTS:
            shown = shown.sample(PROJECTION_POINTS, seed=model.config.seed)
        _png(
            meta,
            folder,
            "projection",
            plots.projection_scatter(
                model.transform(shown),
                shown["segment_id"].to_numpy(),
                model.names,
                model.config.seed,
                max_points=PROJECTION_POINTS,
            ),
            "Segments in 2-D",
        )
        _png(
            meta,
            folder,
            "profile_heatmap",
            plots.profile_heatmap(profile, list(PROFILE_FEATURES)),
            "Profiles",
        )
        _png(meta, folder, "sizes_over_time", plots.segment_sizes_plot(sizes), "Segment sizes")
        return MaterializeResult(metadata=meta)

    return [segmentation_model, customer_segments, segment_migrations, segment_profiles_asset]


def build_segmentation_checks(
    partitions_def: DailyPartitionsDefinition, truth_dir: Path
) -> list[Any]:
    """Evaluation of customer_segments against the generator's planted personas (if any)."""

    @asset_check(
        asset="customer_segments",
        name="segments_recover_planted_personas",
        description=(
            "On generated data only: ARI and NMI of the last day's segments against the "
            "planted personas (the truth file), the RFM baseline's, and how hard the personas "
            "are (per-feature ARI of a depth-3 tree, gradient-boosting accuracy). Passes "
            "without a truth file; warns below ARI 0.8 (default algorithm) or 0.6 (others)."
        ),
        partitions_def=partitions_def,
        blocking=False,
    )
    def segments_recover_planted_personas(
        context: AssetCheckExecutionContext, warehouse: Warehouse
    ) -> AssetCheckResult:
        from seg_pipeline.segmentation import evaluation
        from seg_pipeline.segmentation import model as sm

        truth = evaluation.read_truth(truth_dir)
        if truth is None:
            return AssetCheckResult(
                passed=True, metadata={"note": f"no truth file in {truth_dir}: nothing to judge"}
            )
        _, end = window_dates(context)
        with warehouse.connection() as conn:
            segments = query_frame(
                conn,
                "SELECT customer_id, segment_id, rfm_segment FROM customer_segments "
                "WHERE as_of_date = $d",
                {"d": end},
            )
            model = _model_of_day(conn, end)
            features = sm.features_of_day(conn, end)
        scores = evaluation.recovery_scores(
            segments.select("customer_id", "segment_id"), truth, model.noise_segment_id
        )
        rfm = evaluation.recovery_scores(
            segments.select(
                "customer_id",
                pl.col("rfm_segment").rank("dense").cast(pl.Int64).alias("segment_id"),
            ),
            truth,
        )
        hardness = evaluation.difficulty_report(features, truth, model.config)
        default = model.config.algorithm == DEFAULT_ALGORITHM
        target = RECOVERY_TARGET["default" if default else "other"]
        ari = scores.get("ari_without_noise", scores["ari"])
        return AssetCheckResult(
            passed=bool(ari >= target),
            severity=AssetCheckSeverity.WARN,
            metadata={
                "as_of_date": end.isoformat(),
                "algorithm": model.config.algorithm,
                "target_ari": target,
                **{f"segments_{k}": v for k, v in scores.items()},
                **{f"rfm_baseline_{k}": v for k, v in rfm.items()},
                "max_single_feature_ari": hardness["max_single_feature_ari"],
                "single_feature_ari": MetadataValue.json(hardness["single_feature_ari"]),
                "supervised_cv_accuracy": hardness["supervised_cv_accuracy"],
            },
        )

    return [segments_recover_planted_personas]
