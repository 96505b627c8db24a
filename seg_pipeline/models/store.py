"""The model store: every fitted model is saved, versioned and loaded the same way.

A model version is a row of the warehouse table ``model_registry`` (kind, version id, training
window, parameters, metrics, details, content hash) and an artifact file under the model
directory, ``<model_dir>/<kind>/<version>-<hash>.skops``. Artifact files are named by their
content and never overwritten, so a refit of a version, or a copy of the warehouse sharing the
folder, never changes the file another registry row points to. Daily tables record the version
they used; no model is copied into table rows.

Artifact format: a model is saved as its *state*, a tree of plain values (dicts, lists, strings,
numbers, ``None``), NumPy arrays and scikit-learn's own estimators, written with skops
(scikit-learn's secure persistence). Loading never executes code from the file: skops refuses
every type that is not on its trusted list, and the project's own classes never appear in the
file, because each model class turns itself into state (``to_state``) and back
(``from_state``). So an artifact stays readable when a project class is moved or renamed,
which pickle and joblib (they store import paths and run code on load) do not give.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self, TypeVar

import duckdb
from dagster import ConfigurableResource
from pydantic import Field

from seg_pipeline.names import path_under
from seg_pipeline.resources import query_frame, read_sql

ARTIFACT_FORMAT = "skops"
# Beyond skops' defaults (builtins, NumPy arrays, SciPy sparse, scikit-learn estimators):
# - NumPy dtype objects, which the imputers keep and which carry no code;
# - what a HistGradientBoosting model with categorical inputs holds: its trees
#   (TreePredictor, left out of skops' defaults because a crafted node array can crash
#   prediction; here a file is loaded only if its SHA-256 is the one registered when this
#   pipeline wrote it) and its input check, check_array bound with functools.partial (skops
#   still refuses a partial of any function not listed).
TRUSTED_TYPES = (
    "numpy.dtype",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "functools.partial",
    "sklearn.utils.validation.check_array",
)


class ModelStoreError(RuntimeError):
    """A model version is missing, unreadable or not what the registry says it is."""


class Persistable(Protocol):
    """A model class the store can save: a kind name and a state round trip."""

    kind: ClassVar[str]

    def to_state(self) -> dict[str, Any]: ...

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self: ...


M = TypeVar("M", bound=Persistable)


@dataclass(frozen=True)
class ModelVersion:
    """One registered model version (a row of ``model_registry``)."""

    kind: str
    model_version: str
    training_start: date | None
    training_end: date
    params: dict[str, Any]
    metrics: dict[str, Any]
    details: dict[str, Any]
    artifact_path: str
    artifact_format: str
    content_hash: str
    saved_at: datetime

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ModelVersion:
        return cls(
            **{
                **row,
                "params": json.loads(row["params"]),
                "metrics": json.loads(row["metrics"]),
                "details": json.loads(row["details"]),
            }
        )


def _json(value: Mapping[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def fingerprint(settings: Mapping[str, Any]) -> str:
    """Short stable hash of a model's settings: other settings make another version."""
    return hashlib.sha256(_json(settings).encode()).hexdigest()[:10]


@lru_cache(maxsize=16)
def _read_state(path: str, content_hash: str, modified_ns: int) -> dict[str, Any]:
    """The state in an artifact file, cached while the file is unchanged (a run loads a
    version once however many days use it). Callers must not modify it."""
    import skops.io

    data = Path(path).read_bytes()
    if hashlib.sha256(data).hexdigest() != content_hash:
        raise ModelStoreError(f"hash mismatch: {path} is not the artifact that was registered")
    untrusted = [t for t in skops.io.get_untrusted_types(data=data) if t not in TRUSTED_TYPES]
    if untrusted:
        raise ModelStoreError(f"{path} holds types that are not trusted: {untrusted}")
    return skops.io.loads(data, trusted=list(TRUSTED_TYPES))


class ModelStore(ConfigurableResource):
    """Where fitted models live: registry rows in the warehouse, artifacts in ``model_dir``.

    Every method takes the warehouse connection of the calling step, so registering a version
    is part of the step's transaction: a failed step registers nothing (an artifact file it
    wrote stays unreferenced).
    """

    model_dir: str = Field(description="Folder of the model artifacts: <model_dir>/<kind>/")

    def _ensure(self, conn: duckdb.DuckDBPyConnection) -> None:
        conn.execute(read_sql("models/create_model_registry"))

    def _write_artifact(self, model: Persistable, model_version: str) -> tuple[str, str]:
        """Write ``model``'s artifact (once per content); returns its path relative to
        ``model_dir`` and its SHA-256."""
        import skops.io

        data = skops.io.dumps(model.to_state())
        digest = hashlib.sha256(data).hexdigest()
        relative = f"{model.kind}/{model_version}-{digest[:16]}.{ARTIFACT_FORMAT}"
        path = path_under(self.model_dir, relative, what="model artifact")
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as tmp:
                tmp.write(data)
            os.replace(tmp.name, path)
        return relative, digest

    def replace_artifact(
        self, conn: duckdb.DuckDBPyConnection, model: Persistable, model_version: str
    ) -> Path:
        """Point the registered ``model_version`` at a new artifact of ``model`` (the same
        version changed in place, e.g. an erased customer's rows removed), keeping its
        registry row otherwise. Returns the old artifact's path: the caller deletes it once
        its transaction has committed."""
        found = self.version(conn, model_version)
        if found is None:
            raise ModelStoreError(f"model version {model_version!r} is not in model_registry")
        relative, digest = self._write_artifact(model, model_version)
        conn.execute(
            read_sql("models/replace_artifact"),
            {"model_version": model_version, "artifact_path": relative, "content_hash": digest},
        )
        return path_under(self.model_dir, found.artifact_path, what="model artifact")

    def save(
        self,
        conn: duckdb.DuckDBPyConnection,
        model: Persistable,
        model_version: str,
        *,
        training_end: date,
        training_start: date | None = None,
        params: Mapping[str, Any] | None = None,
        metrics: Mapping[str, Any] | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        """Write ``model``'s artifact and register it as ``model_version``."""
        relative, digest = self._write_artifact(model, model_version)
        self._ensure(conn)
        conn.execute(
            read_sql("models/register_model"),
            {
                "kind": model.kind,
                "model_version": model_version,
                "start_date": training_start,
                "end_date": training_end,
                "params": _json(params or {}),
                "metrics": _json(metrics or {}),
                "details": _json(details or {}),
                "artifact_path": relative,
                "artifact_format": ARTIFACT_FORMAT,
                "content_hash": digest,
            },
        )
        found = self.version(conn, model_version)
        assert found is not None
        return found

    def _one(
        self, conn: duckdb.DuckDBPyConnection, sql_name: str, params: Mapping[str, Any]
    ) -> ModelVersion | None:
        self._ensure(conn)
        rows = query_frame(conn, read_sql(sql_name), params).to_dicts()
        return ModelVersion.from_row(rows[0]) if rows else None

    def version(self, conn: duckdb.DuckDBPyConnection, model_version: str) -> ModelVersion | None:
        """The registered version ``model_version``, or ``None``."""
        return self._one(conn, "models/model_version", {"model_version": model_version})

    def in_force(
        self, conn: duckdb.DuckDBPyConnection, kind: str, as_of_date: date
    ) -> ModelVersion | None:
        """The version of ``kind`` trained most recently on or before ``as_of_date``."""
        return self._one(conn, "models/model_in_force", {"kind": kind, "as_of_date": as_of_date})

    def versions(self, conn: duckdb.DuckDBPyConnection, kind: str) -> list[ModelVersion]:
        """Every version of ``kind``, oldest first."""
        self._ensure(conn)
        frame = query_frame(conn, read_sql("models/model_versions"), {"kind": kind})
        return [ModelVersion.from_row(r) for r in frame.to_dicts()]

    def load(self, conn: duckdb.DuckDBPyConnection, model_version: str, model_class: type[M]) -> M:
        """The model saved as ``model_version``, checked against its registered hash.

        Raises
        ------
        ModelStoreError
            Naming the version when it is not registered, is of another kind, its artifact is
            missing, or the artifact's bytes are not the ones registered (tampered or replaced).
        """
        found = self.version(conn, model_version)
        if found is None:
            raise ModelStoreError(f"model version {model_version!r} is not in model_registry")
        if found.kind != model_class.kind:
            raise ModelStoreError(
                f"model version {model_version!r} is a {found.kind!r} model, "
                f"not {model_class.kind!r}"
            )
        path = path_under(self.model_dir, found.artifact_path, what="model artifact")
        if not path.exists():
            raise ModelStoreError(f"model version {model_version!r}: artifact missing: {path}")
        try:
            state = _read_state(str(path), found.content_hash, path.stat().st_mtime_ns)
        except ModelStoreError as error:
            raise ModelStoreError(f"model version {model_version!r}: {error}") from None
        return model_class.from_state(state)
