"""What the predictive stage's daily tables hold, as plain functions (connection and day in,
frame out), and the metadata of their runs.

- ``predictive_models``: per day and target, the champion in force; on a refit day the
  challenger trained that day, how it compared with the champion and the baselines, and
  whether it was promoted;
- ``customer_scores``: every customer's churn risk (and decile), purchase propensity,
  expected lifetime value and segment, with the model versions used.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import duckdb
import numpy as np
import polars as pl
from dagster import Config, MetadataValue, get_dagster_logger
from pydantic import Field

from seg_pipeline.features.reviews import refit_day
from seg_pipeline.metadata import PlotFolder, markdown_table
from seg_pipeline.models.store import ModelStore, fingerprint
from seg_pipeline.predictive.config import CHANNELS, PredictiveConfig, Target
from seg_pipeline.predictive.model import MODEL_CLASSES, ScoreModel
from seg_pipeline.resources import query_frame, read_sql, table_exists

MODELS_SCHEMA = {
    "as_of_date": pl.Date,
    "target": pl.String,
    "horizon_days": pl.Int64,
    "champion_version": pl.String,
    "challenger_version": pl.String,
    "promoted": pl.Boolean,
    "decision": pl.String,
    "validation_cutoff": pl.Date,
    "metric": pl.String,
    "challenger_score": pl.Float64,
    "champion_score": pl.Float64,
}
PERMUTATION_ROWS = 2_000
PERMUTATION_REPEATS = 2


def _previous_champion(conn: duckdb.DuckDBPyConnection, target: str, day: date) -> str | None:
    if not table_exists(conn, "predictive_models"):
        return None
    frame = query_frame(
        conn, read_sql("predictive/champion_before"), {"target": target, "as_of_date": day}
    )
    return frame["champion_version"][0] if frame.height else None


def load_score_model(
    conn: duckdb.DuckDBPyConnection, models: ModelStore, target: str, version: str
) -> ScoreModel:
    return models.load(conn, version, MODEL_CLASSES[target])


def group_figures(
    valid: pl.DataFrame, y: np.ndarray, p: np.ndarray, attributes: list[str]
) -> dict[str, dict[str, dict[str, float | int | None]]]:
    """Per protected attribute present in ``valid`` and per group of it (null: "unknown"):
    rows, observed rate, mean score, calibration error and ROC AUC of the scores ``p``, so a
    reviewer sees whether a model treats groups differently."""
    from seg_pipeline.predictive.metrics import expected_calibration_error

    out: dict[str, dict[str, dict[str, float | int | None]]] = {}
    for attribute in (a for a in attributes if a in valid.columns):
        groups = valid[attribute].cast(pl.String).fill_null("unknown").to_numpy()
        out[attribute] = {}
        for group in sorted(set(groups)):
            inside = groups == group
            labels = y[inside]
            both = 0 < labels.sum() < len(labels)
            out[attribute][str(group)] = {
                "rows": int(inside.sum()),
                "observed_rate": round(float(labels.mean()), 4),
                "mean_score": round(float(p[inside].mean()), 4),
                "ece": round(expected_calibration_error(labels, p[inside]), 4),
                "roc_auc": round(float(_auc(labels, p[inside])), 4) if both else None,
            }
    return out


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p))


def _explain(
    model: ScoreModel, valid: pl.DataFrame, y: np.ndarray, settings: PredictiveConfig
) -> dict[str, Any]:
    """Calibration curve, permutation importance and the figures per protected group, on the
    validation rows."""
    from sklearn.calibration import calibration_curve

    p = model.predict(valid)
    observed, predicted = calibration_curve(y, p, n_bins=10, strategy="quantile")
    importance = permutation_importance(model, valid, y, settings.seed)
    top = sorted(importance, key=importance.get, reverse=True)[:15]
    return {
        "calibration_curve": {
            "predicted": [round(float(v), 4) for v in predicted],
            "observed": [round(float(v), 4) for v in observed],
        },
        "permutation_importance": {name: round(importance[name], 5) for name in top},
        "groups": group_figures(valid, y, p, settings.protected_attributes),
    }


def permutation_importance(
    model: ScoreModel, valid: pl.DataFrame, y: np.ndarray, seed: int
) -> dict[str, float]:
    """Per input: the mean drop of ROC AUC on (a seeded sample of) ``valid`` when that input
    is shuffled across rows, all its matrix columns together (a categorical input's indicator
    columns move as one)."""
    rng = np.random.default_rng(seed)
    take = np.sort(
        rng.choice(valid.height, size=min(PERMUTATION_ROWS, valid.height), replace=False)
    )
    x, labels = model.matrix(valid[take]), y[take]
    base = _auc(labels, model.raw_probability(x))
    inputs = model.column_inputs()
    out = {}
    for i, name in enumerate(model.features):
        columns = np.flatnonzero(inputs == i)
        drops = []
        for _ in range(PERMUTATION_REPEATS):
            shuffled = x.copy()
            shuffled[:, columns] = x[rng.permutation(len(x))][:, columns]
            drops.append(base - _auc(labels, model.raw_probability(shuffled)))
        out[name] = float(np.mean(drops))
    return out


def _train_or_find(
    conn: duckdb.DuckDBPyConnection,
    day: date,
    target: Target,
    settings: PredictiveConfig,
    models: ModelStore,
    champion: str | None,
) -> dict[str, Any]:
    """The refit day's challenger: found in the store (a re-run) or trained, judged against
    ``champion`` and saved. Returns the decision fields of the day's row."""
    from seg_pipeline.predictive import training

    version = f"{day:%Y%m%d}-{target.name}-{fingerprint(settings.model_dump())}"
    found = models.version(conn, version)
    if found is None:
        try:
            challenger = training.train_challenger(conn, day, target, settings)
        except training.NotEnoughHistory as why:
            get_dagster_logger().info(f"{target.name} {day}: no challenger: {why}")
            return {"decision": f"no challenger: {why}"}
        current = load_score_model(conn, models, target.name, champion) if champion else None
        promoted, reason = training.champion_decision(challenger, current, settings.champion_metric)
        metrics = {**challenger.metrics}
        details = {
            **training.summary_of(challenger),
            **_explain(challenger.model, challenger.valid, challenger.y_valid, settings),
            "champion_before": champion,
            "champion_metrics": challenger.champion_metrics,
            "promoted": promoted,
            "decision": reason,
            "calibration": challenger.model.calibration,
            "family": challenger.model.family,
        }
        found = models.save(
            conn,
            challenger.model,
            version,
            training_end=day,
            training_start=min(challenger.plan.training_cutoffs),
            params=settings.model_dump(),
            metrics=metrics,
            details=details,
        )
        get_dagster_logger().info(f"{target.name} {day}: challenger {version}: {reason}")
    details, metric = found.details, settings.champion_metric
    champion_metrics = details.get("champion_metrics") or {}
    return {
        "challenger_version": version,
        "promoted": details["promoted"],
        "decision": details["decision"],
        "validation_cutoff": date.fromisoformat(details["validation_cutoff"]),
        "metric": metric,
        "challenger_score": found.metrics.get(metric),
        "champion_score": champion_metrics.get(metric),
    }


def predictive_models_rows(
    conn: duckdb.DuckDBPyConnection, day: date, settings: PredictiveConfig, models: ModelStore
) -> pl.DataFrame:
    """The ``predictive_models`` rows of ``day``, one per target: the champion of the day
    before, replaced by the day's challenger if it is better (refit days only)."""
    settings = settings or PredictiveConfig()
    by_hand = _versions_set_by_hand(conn, models, settings.set_champion)
    rows = []
    for target in settings.targets():
        champion = _previous_champion(conn, target.name, day)
        row: dict[str, Any] = {
            "as_of_date": day,
            "target": target.name,
            "horizon_days": target.horizon_days,
            "promoted": False,
            "decision": "not a refit day",
        }
        if settings.set_champion:
            if target.name in by_hand:
                row["promoted"] = True
                row["decision"] = f"set by hand (was {champion or 'none'})"
                champion = by_hand[target.name]
            else:
                row["decision"] = "kept: no version of this target was set by hand"
        elif refit_day(day, settings.refit_every_days) == day:
            row.update(_train_or_find(conn, day, target, settings, models, champion))
            if row["promoted"]:
                champion = row["challenger_version"]
        row["champion_version"] = champion
        rows.append(row)
    return pl.DataFrame(rows, schema=MODELS_SCHEMA)


def _versions_set_by_hand(
    conn: duckdb.DuckDBPyConnection, models: ModelStore, versions: list[str]
) -> dict[str, str]:
    """Target -> version of ``set_champion``, checked against the model store."""
    out: dict[str, str] = {}
    for version in versions:
        found = models.version(conn, version)
        if found is None or found.kind not in MODEL_CLASSES:
            raise ValueError(
                f"set_champion: {version!r} is not a version of a predictive model "
                f"({', '.join(MODEL_CLASSES)}) in model_registry"
            )
        if found.kind in out:
            raise ValueError(
                f"set_champion: two {found.kind} versions: {out[found.kind]}, {version}"
            )
        out[found.kind] = version
    return out


def summarize_models(
    conn: duckdb.DuckDBPyConnection,
    start: date,
    end: date,
    last: pl.DataFrame,
    settings: PredictiveConfig,
    models: ModelStore,
    plots: PlotFolder,
) -> dict[str, Any]:
    """Metadata: per target, the champion on the run's last day, its validation figures beside
    the baselines, the latest decision, calibration curve and permutation importance."""
    from seg_pipeline.predictive import plots as draw

    meta: dict[str, Any] = {}
    for row in last.iter_rows(named=True):
        target, version = row["target"], row["champion_version"]
        meta[f"{target}_champion"] = version or "none"
        meta[f"{target}_decision"] = row["decision"]
        if version is None:
            continue
        found = models.version(conn, version)
        assert found is not None
        details = found.details
        condition = {"response": "channel", "next_order": "horizon"}.get(target)
        header = ("score", "ROC AUC", "PR AUC", "Brier", "ECE", "lift top 10%", "capture top 10%")
        table = [
            (
                f"model ({details['family']}, {details['calibration']})",
                *(found.metrics.get(k) for k in ("roc_auc", "pr_auc", "brier", "ece")),
                found.metrics["lift_top10"],
                found.metrics["capture_top10"],
            ),
            *(
                (name, m["roc_auc"], m["pr_auc"], None, None, m["lift_top10"], m["capture_top10"])
                for name, m in details["baselines"].items()
            ),
        ]
        averaged = f" (figures averaged over each {condition})" if condition else ""
        meta[f"{target}_validation"] = MetadataValue.md(
            f"Validation cut-off {details['validation_cutoff']}{averaged}, "
            f"{details['validation_rows']} rows; trained on "
            f"{details['train_rows']} rows of {len(details['training_cutoffs'])} cut-offs.\n\n"
            + markdown_table(header, [_rounded(r) for r in table])
        )
        dates = details.get("next_order_dates")
        if dates:
            meta[f"{target}_expected_dates"] = MetadataValue.md(
                "Expected days to the next order against what happened (validation cut-off, "
                f"{dates['model']['rows']} customers).\n\n"
                + markdown_table(
                    ("expected days from", "concordance", "MAE days", "recall", "precision"),
                    [_rounded((name, *(f[k] for k in DATE_FIGURES))) for name, f in dates.items()],
                )
            )
        groups = [
            (attribute, group, *figures.values())
            for attribute, by_group in details.get("groups", {}).items()
            for group, figures in by_group.items()
        ]
        if groups:
            meta[f"{target}_by_group"] = MetadataValue.md(
                "Validation figures per group of the protected attributes (not model inputs "
                "unless use_protected_attributes).\n\n"
                + markdown_table(
                    ("attribute", "group", "rows", "observed", "mean score", "ECE", "ROC AUC"),
                    groups,
                )
            )
        meta[f"{target}_roc_auc"] = found.metrics["roc_auc"]
        meta[f"{target}_ece"] = found.metrics["ece"]
        folder = f"predictive_models/{version}"
        plots.attach(
            meta,
            folder,
            f"{target}_calibration",
            draw.calibration_plot(target, details["calibration_curve"]),
            f"{target} calibration",
        )
        plots.attach(
            meta,
            folder,
            f"{target}_importance",
            draw.importance_plot(target, details["permutation_importance"]),
            f"{target} permutation importance",
        )
    return meta


DATE_FIGURES = ("concordance", "mae_days", "date_recall", "date_precision")


def _rounded(row: tuple) -> tuple:
    return tuple(round(v, 4) if isinstance(v, float) else v for v in row)


# ---------------------------------------------------------------------------- scores


REASON = pl.Struct({"feature": pl.String, "value": pl.String, "impact": pl.Float64})


class CustomerScoresConfig(Config):
    """How much of customer_scores is explained."""

    reasons_top_share: float = Field(
        default=0.1,
        ge=0.0,
        le=1.0,
        description="churn reasons for this share of customers with the highest churn risk "
        "(0.1: the top decile; 1.0: everyone); the others' churn_reasons are null",
    )
    reasons_per_customer: int = Field(default=3, ge=1, le=10)


def customer_scores_rows(
    conn: duckdb.DuckDBPyConnection,
    day: date,
    settings: CustomerScoresConfig | None,
    models: ModelStore,
) -> pl.DataFrame:
    """Every customer of customer_features on ``day`` with the champions' scores of that day
    (null where a target has no champion yet), the churn reasons of the riskiest
    ``reasons_top_share``, expected CLV and segment."""
    settings = settings or CustomerScoresConfig()
    from seg_pipeline.predictive.training import register_model_inputs

    register_model_inputs(conn)
    features = query_frame(conn, read_sql("predictive/scoring_rows"), {"as_of_date": day})
    champions = query_frame(conn, read_sql("predictive/champions_of_day"), {"as_of_date": day})
    versions = dict(zip(champions["target"], champions["champion_version"], strict=True))
    n = features.height
    nothing = pl.Series([None] * n, dtype=pl.Float64)
    columns: dict[str, pl.Series] = {}
    reasons = pl.Series("churn_reasons", [None] * n, dtype=pl.List(REASON))
    models_of_day = {
        target: load_score_model(conn, models, target, version)
        for target, version in versions.items()
        if version is not None
    }
    for target, column in (("churn", "churn_risk"), ("purchase", "purchase_propensity")):
        model = models_of_day.get(target)
        columns[column] = nothing if model is None else pl.Series(model.predict(features).round(4))
    if "churn" in models_of_day and settings.reasons_top_share > 0:
        reasons = _top_reasons(models_of_day["churn"], features, columns["churn_risk"], settings)
    response = models_of_day.get("response")
    by_channel = None if response is None else response.predict_at(features, CHANNELS).round(4)
    for k, channel in enumerate(CHANNELS):
        columns[f"response_{channel}"] = (
            nothing if by_channel is None else pl.Series(by_channel[:, k])
        )
    next_order = models_of_day.get("next_order")
    columns["expected_days_to_next_order"] = (
        nothing
        if next_order is None
        else pl.Series(next_order.expected_days(features).round(1)).fill_nan(None)
    )
    for target in MODEL_CLASSES:
        columns[f"{target}_model_version"] = pl.Series([versions.get(target)] * n, dtype=pl.String)
    frame = pl.DataFrame(
        {
            "as_of_date": pl.Series([day] * n, dtype=pl.Date),
            "customer_id": features["customer_id"],
            **columns,
            "churn_reasons": reasons,
        }
    ).with_columns(
        ((pl.col("churn_risk").rank("ordinal") - 1) * 10 // pl.col("churn_risk").count() + 1)
        .cast(pl.Int8)
        .alias("churn_risk_decile"),
        (
            pl.col("as_of_date")
            + pl.duration(
                days=pl.col("expected_days_to_next_order").fill_nan(None).ceil().cast(pl.Int64)
            )
        ).alias("expected_next_order_date"),
    )
    extra = query_frame(conn, read_sql("predictive/score_context"), {"as_of_date": day})
    return frame.join(extra, on="customer_id", how="left").select(
        "as_of_date",
        "customer_id",
        "churn_risk",
        "churn_risk_decile",
        "churn_reasons",
        "purchase_propensity",
        "expected_next_order_date",
        "expected_days_to_next_order",
        *(f"response_{channel}" for channel in CHANNELS),
        "expected_clv",
        "prob_alive",
        "segment_id",
        "segment_name",
        *(f"{target}_model_version" for target in MODEL_CLASSES),
    )


def _top_reasons(
    model: ScoreModel, features: pl.DataFrame, risk: pl.Series, settings: CustomerScoresConfig
) -> pl.Series:
    """churn_reasons: the model's reasons for the riskiest customers, null for the others."""
    n = features.height
    count = min(n, int(np.ceil(n * settings.reasons_top_share)))
    riskiest = np.argsort(-risk.to_numpy(), kind="stable")[:count]
    explained = model.reasons(features[riskiest], top=settings.reasons_per_customer)
    values: list[list[dict[str, Any]] | None] = [None] * n
    for row, reasons in zip(riskiest, explained, strict=True):
        values[row] = reasons
    return pl.Series("churn_reasons", values, dtype=pl.List(REASON))


SCORE_COLUMNS = (
    "churn_risk",
    "purchase_propensity",
    "expected_days_to_next_order",
    *(f"response_{channel}" for channel in CHANNELS),
    "expected_clv",
)


def summarize_scores(
    conn: duckdb.DuckDBPyConnection, start: date, end: date, last: pl.DataFrame, *_: Any
) -> dict[str, Any]:
    """Metadata: the last day's score distributions and their shift from the day before."""
    previous = query_frame(
        conn, read_sql("predictive/scores_of_day"), {"as_of_date": end - timedelta(days=1)}
    )
    meta: dict[str, Any] = {}
    rows = []
    for column in SCORE_COLUMNS:
        values = last[column].drop_nulls()
        if values.is_empty():
            continue
        q = values.quantile
        shift = None
        if column in previous.columns and previous[column].drop_nulls().len():
            shift = round(float(values.mean() - previous[column].drop_nulls().mean()), 4)
        rows.append(
            (
                column,
                values.len(),
                round(float(values.mean()), 4),
                *(round(float(q(x)), 4) for x in (0.1, 0.5, 0.9)),
                shift,
            )
        )
        meta[f"mean_{column}"] = float(values.mean())
    meta["score_distribution"] = MetadataValue.md(
        markdown_table(
            ("score", "customers", "mean", "p10", "median", "p90", "mean shift from day before"),
            rows,
        )
    )
    return meta
