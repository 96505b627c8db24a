"""The fitted segmentation model (preprocessing + clustering + stable ids + names), how it is
saved in the model store, and the refit rule.

Every fitted version is saved in the model store (kind ``segmentation``: the artifact, its
parameters, K-selection scores and how its segments matched the previous version's); the
``segmentation_model`` table says, for each day, which version is in force.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, ClassVar, Self

import duckdb
import numpy as np
import polars as pl
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline

from seg_pipeline.models.store import ModelStore, fingerprint
from seg_pipeline.resources import query_frame, read_sql, registered
from seg_pipeline.segmentation.algorithms import SegmenterFit, fit_segmenter
from seg_pipeline.segmentation.config import SCHEDULING_FIELDS, SegmentationConfig
from seg_pipeline.segmentation.estimators import (
    DensitySegmenter,
    GMMSegmenter,
    KMeansSegmenter,
    SOMSegmenter,
    WardSegmenter,
)
from seg_pipeline.segmentation.identity import SegmentMatch, initial_ids, match_segments
from seg_pipeline.segmentation.preprocess import build_preprocessor, feature_matrix
from seg_pipeline.segmentation.profiles import name_segments, segment_profiles

KIND = "segmentation"
NOISE_NAME = "Unclustered (noise)"
# Stable names of the estimators in saved models (the artifact never holds an import path).
ESTIMATORS: dict[str, type[BaseEstimator]] = {
    "kmeans": KMeansSegmenter,
    "ward": WardSegmenter,
    "density": DensitySegmenter,
    "gmm": GMMSegmenter,
    "som": SOMSegmenter,
}


def config_fingerprint(config: SegmentationConfig) -> str:
    """Short stable hash of every setting of the fit (a changed setting means a different
    model); settings of when to fit (:data:`SCHEDULING_FIELDS`) are left out."""
    return fingerprint(config.model_dump(exclude=set(SCHEDULING_FIELDS)))


def estimator_state(estimator: BaseEstimator) -> dict[str, Any]:
    """A fitted segmenter as plain state: its stable name, parameters and learned attributes."""
    names = [name for name, cls in ESTIMATORS.items() if type(estimator) is cls]
    if not names:
        raise TypeError(f"{type(estimator).__name__} is not a registered segmenter")
    skipped = getattr(estimator, "NOT_SAVED", ())
    learned = {
        k: v
        for k, v in vars(estimator).items()
        if k.endswith("_") and k[0] != "_" and k not in skipped
    }
    return {"estimator": names[0], "params": estimator.get_params(deep=False), "learned": learned}


def estimator_from_state(state: dict[str, Any]) -> BaseEstimator:
    """The segmenter :func:`estimator_state` described."""
    estimator = ESTIMATORS[state["estimator"]](**state["params"])
    for name, value in state["learned"].items():
        setattr(estimator, name, value)
    return estimator


def _frame_bytes(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_ipc(buffer)
    return buffer.getvalue()


def _pairs(mapping: dict[int, Any]) -> list[list[Any]]:
    return [[int(k), v] for k, v in mapping.items()]


@dataclass
class SegmentationModel:
    """A fitted, versioned segmentation: one object to store, load and apply.

    Attributes
    ----------
    version
        ``<fitted_on>-<algorithm>-<config fingerprint>``.
    fitted_on
        Last day of the training window.
    config
        The settings it was fitted with.
    preprocessor
        Fitted scikit-learn Pipeline (impute, log1p, robust scaling, optional PCA).
    fit
        The fitted clusterer, its K-selection scores and centroids.
    match
        Cluster label -> stable segment id, and how the segments continued the previous model's.
    names
        Stable segment id -> name.
    noise_segment_id
        Segment id of density-noise points, if any.
    """

    kind: ClassVar[str] = KIND

    version: str
    fitted_on: date
    config: SegmentationConfig
    preprocessor: Pipeline
    fit: SegmenterFit
    match: SegmentMatch
    names: dict[int, str]
    train_rows: int
    window_start: date
    previous_version: str | None = None
    noise_segment_id: int | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def transform(self, frame: pl.DataFrame) -> np.ndarray:
        """Preprocessed feature matrix of ``frame`` (customer_features rows)."""
        return self.preprocessor.transform(feature_matrix(frame, self.config))

    def labels(self, frame: pl.DataFrame) -> np.ndarray:
        """Raw cluster labels of the model for ``frame``."""
        return np.asarray(self.fit.estimator.predict(self.transform(frame)), dtype=np.int64)

    def predict(self, frame: pl.DataFrame) -> np.ndarray:
        """Stable segment id of every row of ``frame``."""
        return self.segment_ids_of(self.labels(frame))

    def segment_ids_of(self, labels: np.ndarray) -> np.ndarray:
        """Stable segment ids of raw cluster labels."""
        lookup = np.zeros(max(self.match.segment_ids) + 1, dtype=np.int64)
        for label, segment_id in self.match.segment_ids.items():
            lookup[label] = segment_id
        return lookup[labels]

    @property
    def segment_ids(self) -> list[int]:
        return sorted(self.match.segment_ids.values())

    def to_state(self) -> dict[str, Any]:
        """The model as plain values, arrays and scikit-learn objects (see the model store)."""
        fit = self.fit
        return {
            "version": self.version,
            "fitted_on": self.fitted_on.isoformat(),
            "config": self.config.model_dump(),
            "preprocessor": self.preprocessor,
            "fit": {
                "estimator": estimator_state(fit.estimator),
                "n_segments": fit.n_segments,
                "noise_label": fit.noise_label,
                "k_scores": _frame_bytes(fit.k_scores),
                "chosen_k": int(fit.chosen_k),
                "selection": fit.selection,
                "centroids": fit.centroids,
                "train_labels": fit.train_labels,
                "linkage": fit.linkage,
            },
            "match": {
                "segment_ids": _pairs(self.match.segment_ids),
                "carried": _pairs(self.match.carried),
                "new": [int(v) for v in self.match.new],
                "vanished": [int(v) for v in self.match.vanished],
            },
            "names": _pairs(self.names),
            "train_rows": self.train_rows,
            "window_start": self.window_start.isoformat(),
            "previous_version": self.previous_version,
            "noise_segment_id": self.noise_segment_id,
            "info": json.dumps(self.info),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        """The model :meth:`to_state` described."""
        fit, match = state["fit"], state["match"]
        return cls(
            version=state["version"],
            fitted_on=date.fromisoformat(state["fitted_on"]),
            config=SegmentationConfig(**state["config"]),
            preprocessor=state["preprocessor"],
            fit=SegmenterFit(
                estimator=estimator_from_state(fit["estimator"]),
                n_segments=fit["n_segments"],
                noise_label=fit["noise_label"],
                k_scores=pl.read_ipc(io.BytesIO(fit["k_scores"])),
                chosen_k=fit["chosen_k"],
                selection=fit["selection"],
                centroids=fit["centroids"],
                train_labels=fit["train_labels"],
                linkage=fit["linkage"],
            ),
            match=SegmentMatch(
                segment_ids={k: v for k, v in match["segment_ids"]},
                carried={k: v for k, v in match["carried"]},
                new=list(match["new"]),
                vanished=list(match["vanished"]),
            ),
            names={k: v for k, v in state["names"]},
            train_rows=state["train_rows"],
            window_start=date.fromisoformat(state["window_start"]),
            previous_version=state["previous_version"],
            noise_segment_id=state["noise_segment_id"],
            info=json.loads(state["info"]),
        )


def segments_frame(frame: pl.DataFrame, segment_ids: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame(
        {"customer_id": frame["customer_id"], "segment_id": pl.Series(segment_ids, dtype=pl.Int64)}
    )


def fit_model(
    training: pl.DataFrame,
    day_features: pl.DataFrame,
    config: SegmentationConfig,
    fitted_on: date,
    window_start: date,
    previous: SegmentationModel | None,
    next_id: int,
) -> SegmentationModel:
    """Fit preprocessing and clustering on ``training``; give stable ids and names.

    Parameters
    ----------
    training
        customer_features rows of the rolling window (sampled).
    day_features
        customer_features of ``fitted_on`` (every customer): the members on which the new
        clusters are matched to ``previous``'s segments and the profiles that name them.
    previous
        The model in force before, if any.
    next_id
        First segment id never used before.
    """
    if training.height < max(config.k_max, 2) + 1:
        raise ValueError(
            f"segmentation needs more than {max(config.k_max, 2)} training rows; the window "
            f"{window_start}..{fitted_on} has {training.height} customer_features rows"
        )
    preprocessor = build_preprocessor(config)
    x_train = preprocessor.fit_transform(feature_matrix(training, config))
    fit = fit_segmenter(x_train, config)
    labels = np.asarray(
        fit.estimator.predict(preprocessor.transform(feature_matrix(day_features, config)))
    )
    if previous is None:
        match = initial_ids(labels, fit.noise_label)
    else:
        match = match_segments(
            previous.predict(day_features), labels, next_id, config.min_match_jaccard
        )
    noise_id = match.segment_ids.get(fit.noise_label) if fit.noise_label is not None else None
    ids = np.array([match.segment_ids[int(v)] for v in labels], dtype=np.int64)
    generated = name_segments(segment_profiles(day_features, segments_frame(day_features, ids)))
    names: dict[int, str] = {}
    for segment_id in sorted(match.segment_ids.values()):
        if segment_id == noise_id:
            names[segment_id] = NOISE_NAME
        elif (
            previous is not None and match.carried.get(segment_id, 0.0) >= config.keep_name_jaccard
        ):
            names[segment_id] = previous.names[segment_id]
    for segment_id in sorted(match.segment_ids.values()):
        if segment_id not in names:
            name = generated.get(segment_id, f"Segment {segment_id}")
            taken = set(names.values())
            candidate, n = name, 2
            while candidate in taken:
                candidate, n = f"{name} {n}", n + 1
            names[segment_id] = candidate
    renamed = {
        segment_id: [previous.names[segment_id], names[segment_id]]
        for segment_id in match.carried
        if previous is not None and previous.names.get(segment_id) != names[segment_id]
    }
    version = f"{fitted_on:%Y%m%d}-{config.algorithm}-{config_fingerprint(config)}"
    return SegmentationModel(
        version=version,
        fitted_on=fitted_on,
        config=config,
        preprocessor=preprocessor,
        fit=fit,
        match=match,
        names=names,
        train_rows=training.height,
        window_start=window_start,
        previous_version=previous.version if previous else None,
        noise_segment_id=noise_id,
        info={"renamed": renamed},
    )


# -- the store ---------------------------------------------------------------------------------


def save_model(
    conn: duckdb.DuckDBPyConnection, models: ModelStore, model: SegmentationModel
) -> None:
    """Save ``model`` in the model store (replacing a previous fit of the same version)."""
    models.save(
        conn,
        model,
        model.version,
        training_start=model.window_start,
        training_end=model.fitted_on,
        params=model.config.model_dump(),
        metrics={
            "chosen_k": int(model.fit.chosen_k),
            "train_rows": model.train_rows,
            "k_scores": model.fit.k_scores.to_dicts(),
        },
        details={
            "algorithm": model.config.algorithm,
            "config_fingerprint": config_fingerprint(model.config),
            "k_selection": model.fit.selection,
            "previous_version": model.previous_version,
            "segment_names": {str(k): v for k, v in model.names.items()},
            "carried_segments": {str(k): v for k, v in model.match.carried.items()},
            "new_segments": model.match.new,
            "vanished_segments": model.match.vanished,
            "refit_reason": model.info.get("refit_reason"),
        },
    )


def load_model(
    conn: duckdb.DuckDBPyConnection, models: ModelStore, version: str
) -> SegmentationModel:
    """The stored segmentation model ``version``."""
    return models.load(conn, version, SegmentationModel)


def model_in_force(
    conn: duckdb.DuckDBPyConnection, models: ModelStore, day: date
) -> SegmentationModel | None:
    """The latest model fitted on or before ``day`` (ties: the latest stored)."""
    found = models.in_force(conn, KIND, day)
    return load_model(conn, models, found.model_version) if found else None


def next_segment_id(conn: duckdb.DuckDBPyConnection, models: ModelStore) -> int:
    """One more than any segment id a stored model ever used (ids are never reused)."""
    used = [
        int(k) for version in models.versions(conn, KIND) for k in version.details["segment_names"]
    ]
    return max(used, default=0) + 1


def history_start(conn: duckdb.DuckDBPyConnection) -> date | None:
    """The first day of customer_features (``None`` before any)."""
    rows = query_frame(conn, read_sql("segmentation/history_start"), {})
    return rows["first_day"][0] if rows.height else None


def first_model_day(conn: duckdb.DuckDBPyConnection, config: SegmentationConfig) -> date | None:
    """The first day a model may be fitted: ``min_history_days`` after the first day of
    customer_features (``None`` before any)."""
    first = history_start(conn)
    return None if first is None else first + timedelta(days=config.min_history_days)


def refit_reason(
    current: SegmentationModel | None, day: date, config: SegmentationConfig, force: bool
) -> str | None:
    """Why the model must be refitted on ``day``, or ``None`` to keep ``current``."""
    if force:
        return "requested"
    if current is None:
        return "no model yet"
    if config_fingerprint(current.config) != config_fingerprint(config):
        return "configuration changed"
    age = (day - current.fitted_on).days
    if age >= config.max_model_age_days:
        return f"model {age} days old (max {config.max_model_age_days})"
    return None


def features_of_day(conn: duckdb.DuckDBPyConnection, day: date) -> pl.DataFrame:
    """customer_features of ``day``, sorted by customer."""
    frame = query_frame(
        conn, read_sql("segmentation/customer_features_of_day"), {"as_of_date": day}
    )
    if frame.is_empty():
        raise LookupError(f"customer_features has no rows for {day}: materialize it first")
    return frame


def training_rows(
    conn: duckdb.DuckDBPyConnection, day: date, config: SegmentationConfig
) -> tuple[pl.DataFrame, date]:
    """The sampled rolling-window rows the model of ``day`` is fitted on."""
    window_start = day - timedelta(days=config.window_days - 1)
    frame = query_frame(
        conn,
        read_sql("segmentation/segmentation_training"),
        {
            "start_date": window_start,
            "as_of_date": day,
            "seed": config.seed,
            "max_rows": config.max_fit_rows,
        },
    )
    return frame, window_start


def erase_training_rows(
    conn: duckdb.DuckDBPyConnection, customer_ids: Sequence[str], models: ModelStore
) -> tuple[dict[str, int], list[Path]]:
    """Remove ``customer_ids``' rows from every stored segmentation model that keeps training
    rows (density clustering's reference points), for the erasure job.

    A stored row holds no id: the customers' ``customer_features`` rows of each model's
    training window are preprocessed by that model and every reference point equal to one of
    them goes (an identical row of another customer too: it identifies nobody). The changed
    model is saved under its version, in the caller's transaction. Returns the rows removed per
    model version and the replaced artifact files, which the caller deletes once committed.
    Run it before the customers' feature rows are deleted.
    """
    ids = pl.DataFrame({"customer_id": list(customer_ids)}, schema={"customer_id": pl.String})
    removed: dict[str, int] = {}
    stale: list[Path] = []
    for version in models.versions(conn, KIND):
        model = load_model(conn, models, version.model_version)
        estimator = model.fit.estimator
        points = getattr(estimator, "reference_points_", None)
        if points is None or not len(points):
            continue
        with registered(conn, "_erase_ids", ids):
            rows = query_frame(
                conn,
                read_sql("segmentation/customer_features_of_customers"),
                {"start_date": version.training_start, "end_date": version.training_end},
            )
        if rows.is_empty():
            continue
        theirs = model.transform(rows)
        hits = np.zeros(len(points), dtype=bool)
        for row in theirs:
            hits |= np.isclose(points, row, rtol=0, atol=1e-9).all(axis=1)
        if hits.any():
            estimator.drop_reference_points(hits)
            stale.append(models.replace_artifact(conn, model, version.model_version))
            removed[version.model_version] = int(hits.sum())
    return removed, stale
