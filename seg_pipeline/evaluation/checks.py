"""Asset checks that compare the pipeline's output with the generator's planted truth."""

from pathlib import Path

import polars as pl
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    DailyPartitionsDefinition,
    MetadataValue,
    asset_check,
)

from seg_pipeline.metadata import markdown_table
from seg_pipeline.models.store import ModelStore
from seg_pipeline.partitions import window_dates
from seg_pipeline.resources import Warehouse, query_frame, read_sql, table_exists

DEFAULT_ALGORITHM = "kmeans"
# Recovery the evaluation check expects on generated data: the default algorithm, the others.
RECOVERY_TARGET = {"default": 0.8, "other": 0.6}


def build_truth_checks(
    partitions_def: DailyPartitionsDefinition, truth_dir: Path
) -> list[AssetChecksDefinition]:
    """Evaluation of customer_segments against the generator's planted personas, and of the
    predictive champions against an oracle that knows the planted purchase process."""

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
        context: AssetCheckExecutionContext, warehouse: Warehouse, models: ModelStore
    ) -> AssetCheckResult:
        from seg_pipeline.evaluation import truth as evaluation
        from seg_pipeline.segmentation import model as sm
        from seg_pipeline.tables import row_of_day

        planted = evaluation.read_truth(truth_dir)
        if planted is None:
            return AssetCheckResult(
                passed=True, metadata={"note": f"no truth file in {truth_dir}: nothing to judge"}
            )
        _, end = window_dates(context)
        with warehouse.connection() as conn:
            segments = query_frame(
                conn, read_sql("evaluation/segments_with_rfm"), {"as_of_date": end}
            )
            version = row_of_day(conn, "segmentation_model", end)["model_version"]
            if version is None:  # before the minimum history
                return AssetCheckResult(
                    passed=True, metadata={"note": f"no segmentation model on {end}: no segments"}
                )
            model = sm.load_model(conn, models, version)
            features = sm.features_of_day(conn, end)
        scores = evaluation.recovery_scores(
            segments.select("customer_id", "segment_id"), planted, model.noise_segment_id
        )
        rfm = evaluation.recovery_scores(
            segments.select(
                "customer_id",
                pl.col("rfm_segment").rank("dense").cast(pl.Int64).alias("segment_id"),
            ),
            planted,
        )
        hardness = evaluation.difficulty_report(features, planted, model.config)
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
                "supervised_holdout_accuracy": hardness["supervised_holdout_accuracy"],
            },
        )

    @asset_check(
        asset="predictive_models",
        name="models_against_planted_truth",
        description=(
            "On generated data only: for each target's champion on the last day, ROC AUC on "
            "its validation cut-off beside the best baseline's and an oracle's that knows "
            "every customer's true purchase rate and drop-out probability "
            "(seg_pipeline/evaluation/predictive.py): the headroom left and the share of the "
            "baseline-to-oracle gap the model closes. Warns if a baseline beats a champion."
        ),
        partitions_def=partitions_def,
        blocking=False,
    )
    def models_against_planted_truth(
        context: AssetCheckExecutionContext, warehouse: Warehouse, models: ModelStore
    ) -> AssetCheckResult:
        from seg_pipeline.evaluation.predictive import against_truth, read_rates

        rates = read_rates(truth_dir)
        if rates is None:
            return AssetCheckResult(
                passed=True, metadata={"note": f"no truth file in {truth_dir}: nothing to judge"}
            )
        _, end = window_dates(context)
        with warehouse.connection() as conn:
            figures = against_truth(conn, models, end, rates)
        if not figures:
            return AssetCheckResult(passed=True, metadata={"note": f"no champion on {end}"})
        passed = all(f["model_roc_auc"] > f["best_baseline_roc_auc"] for f in figures.values())
        metadata: dict = {"as_of_date": end.isoformat()}
        for target, values in figures.items():
            metadata.update({f"{target}_{k}": v for k, v in values.items()})
        return AssetCheckResult(passed=passed, severity=AssetCheckSeverity.WARN, metadata=metadata)

    @asset_check(
        asset="uplift_scores",
        name="uplift_against_planted_truth",
        description=(
            "On generated data only: per channel, the share of the planted uplift (the "
            "truth's extra-order probability of a send, while alive) that the top 30% of "
            "customers by the uplift model hold, beside the top 30% by response propensity, "
            "purchase propensity, at random (30%) and by the planted uplift itself (the "
            "most there is); and the planted extra orders per 1,000 sends to each top 30%. "
            "Warns where response propensity captures more than the uplift model."
        ),
        partitions_def=partitions_def,
        blocking=False,
    )
    def uplift_against_planted_truth(
        context: AssetCheckExecutionContext, warehouse: Warehouse
    ) -> AssetCheckResult:
        from datetime import timedelta

        from seg_pipeline.evaluation.activation import planted_uplift_capture
        from seg_pipeline.predictive.config import CHANNELS

        if not (truth_dir / "customers.parquet").exists():
            return AssetCheckResult(
                passed=True, metadata={"note": f"no truth file in {truth_dir}: nothing to judge"}
            )
        _, end = window_dates(context)
        with warehouse.connection() as conn:
            if not table_exists(conn, "customer_scores"):
                return AssetCheckResult(
                    passed=True, metadata={"note": "no customer_scores to compare with"}
                )
            scored = query_frame(conn, read_sql("evaluation/uplift_rankings"), {"as_of_date": end})
        if scored.is_empty():
            return AssetCheckResult(passed=True, metadata={"note": f"no uplift model on {end}"})
        rows, passed = [], True
        for channel in CHANNELS:
            figures = planted_uplift_capture(
                truth_dir,
                end + timedelta(days=1),
                channel,
                scored.select(
                    "customer_id",
                    pl.col(f"uplift_{channel}").alias("uplift_model"),
                    pl.col(f"response_{channel}").alias("response_propensity"),
                    "purchase_propensity",
                ),
            )
            passed &= (
                figures["uplift_model"]["captured"] >= figures["response_propensity"]["captured"]
            )
            rows += [
                (channel, name, f["captured"], f["extra_orders_per_1000_sends"])
                for name, f in figures.items()
            ]
        return AssetCheckResult(
            passed=bool(passed),
            severity=AssetCheckSeverity.WARN,
            metadata={
                "as_of_date": end.isoformat(),
                "customers": scored.height,
                "top_30_percent": MetadataValue.md(
                    markdown_table(
                        ("channel", "ranking", "planted uplift captured", "extra orders / 1,000"),
                        rows,
                    )
                ),
            },
        )

    return [
        segments_recover_planted_personas,
        models_against_planted_truth,
        uplift_against_planted_truth,
    ]
