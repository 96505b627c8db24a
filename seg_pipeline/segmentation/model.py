"""The fitted segmentation model (preprocessing + clustering + stable ids + names), its
versioned store in the warehouse, and the refit rule.

Table ``segmentation_models`` keeps every fitted version (pickled model, parameters, K-selection
scores, how its segments matched the previous version's); the ``segmentation_model`` asset says,
for each day, which version is in force.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

import duckdb
import numpy as np
import polars as pl
from sklearn.pipeline import Pipeline

from seg_pipeline.resources import query_frame, read_sql, table_exists
from seg_pipeline.segmentation.algorithms import SegmenterFit, fit_segmenter
from seg_pipeline.segmentation.config import SegmentationConfig
from seg_pipeline.segmentation.identity import SegmentMatch, initial_ids, match_segments
from seg_pipeline.segmentation.preprocess import build_preprocessor, feature_matrix
from seg_pipeline.segmentation.profiles import name_segments, segment_profiles

REGISTRY_TABLE = "segmentation_models"
NOISE_NAME = "Unclustered (noise)"


def config_fingerprint(config: SegmentationConfig) -> str:
    """Short stable hash of every setting (a changed setting means a different model)."""
    text = json.dumps(asdict(config), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


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

    def to_bytes(self) -> bytes:
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def from_bytes(data: bytes) -> SegmentationModel:
        model = pickle.loads(data)
        if not isinstance(model, SegmentationModel):
            raise TypeError("stored object is not a SegmentationModel")
        return model


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


def ensure_registry(conn: duckdb.DuckDBPyConnection) -> None:
    if not table_exists(conn, REGISTRY_TABLE):
        conn.execute(
            f"""CREATE TABLE {REGISTRY_TABLE} (
                model_version VARCHAR PRIMARY KEY,
                fitted_on DATE NOT NULL,
                algorithm VARCHAR NOT NULL,
                config_fingerprint VARCHAR NOT NULL,
                n_segments INTEGER NOT NULL,
                selection VARCHAR NOT NULL,
                k_scores VARCHAR NOT NULL,
                config VARCHAR NOT NULL,
                train_rows BIGINT NOT NULL,
                window_start DATE NOT NULL,
                previous_version VARCHAR,
                segment_names VARCHAR NOT NULL,
                carried_segments VARCHAR NOT NULL,
                new_segments VARCHAR NOT NULL,
                vanished_segments VARCHAR NOT NULL,
                model BLOB NOT NULL)"""
        )


def save_model(conn: duckdb.DuckDBPyConnection, model: SegmentationModel) -> None:
    """Store ``model`` (replacing a previous fit of the same version)."""
    ensure_registry(conn)
    conn.execute(f"DELETE FROM {REGISTRY_TABLE} WHERE model_version = $v", {"v": model.version})
    conn.execute(
        f"INSERT INTO {REGISTRY_TABLE} VALUES "
        "($v, $fitted_on, $algorithm, $fp, $n, $selection, $scores, $config, $rows, $ws, $prev, "
        "$names, $carried, $new, $vanished, $model)",
        {
            "v": model.version,
            "fitted_on": model.fitted_on,
            "algorithm": model.config.algorithm,
            "fp": config_fingerprint(model.config),
            "n": len(model.match.segment_ids),
            "selection": model.fit.selection,
            "scores": model.fit.k_scores.write_json(),
            "config": json.dumps(asdict(model.config), default=str),
            "rows": model.train_rows,
            "ws": model.window_start,
            "prev": model.previous_version,
            "names": json.dumps({str(k): v for k, v in model.names.items()}),
            "carried": json.dumps({str(k): v for k, v in model.match.carried.items()}),
            "new": json.dumps(model.match.new),
            "vanished": json.dumps(model.match.vanished),
            "model": model.to_bytes(),
        },
    )


def load_model(conn: duckdb.DuckDBPyConnection, version: str) -> SegmentationModel:
    rows = conn.execute(
        f"SELECT model FROM {REGISTRY_TABLE} WHERE model_version = $v", {"v": version}
    ).fetchall()
    if not rows:
        raise LookupError(f"{REGISTRY_TABLE} has no model {version!r}")
    return SegmentationModel.from_bytes(rows[0][0])


def model_in_force(conn: duckdb.DuckDBPyConnection, day: date) -> SegmentationModel | None:
    """The latest model fitted on or before ``day`` (ties: the latest stored)."""
    if not table_exists(conn, REGISTRY_TABLE):
        return None
    rows = conn.execute(
        f"SELECT model_version FROM {REGISTRY_TABLE} WHERE fitted_on <= $d "
        "ORDER BY fitted_on DESC, model_version DESC LIMIT 1",
        {"d": day},
    ).fetchall()
    return load_model(conn, rows[0][0]) if rows else None


def next_segment_id(conn: duckdb.DuckDBPyConnection) -> int:
    """One more than any segment id a stored model ever used (ids are never reused)."""
    if not table_exists(conn, REGISTRY_TABLE):
        return 1
    rows = conn.execute(f"SELECT segment_names FROM {REGISTRY_TABLE}").fetchall()
    used = [int(k) for (names,) in rows for k in json.loads(names)]
    return max(used, default=0) + 1


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
        conn,
        "SELECT * FROM customer_features WHERE as_of_date = $d ORDER BY customer_id",
        {"d": day},
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
            "window_start": window_start,
            "as_of_date": day,
            "seed": config.seed,
            "max_rows": config.max_fit_rows,
        },
    )
    return frame, window_start
