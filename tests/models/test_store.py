"""The model store: versions registered in the warehouse, artifacts that load safely and
survive a refactor, and clear errors for missing or tampered artifacts."""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, ClassVar, Self

import duckdb
import pytest

from seg_pipeline.features.clv import CLVParams
from seg_pipeline.features.nlp import fit_topic_model
from seg_pipeline.models.store import ModelStore, ModelStoreError
from seg_pipeline.resources import Warehouse, transaction

PARAMS = CLVParams(r=0.8, alpha=12.0, a=0.6, b=2.5, p=6.0, q=4.0, gamma=15.0)


@pytest.fixture
def conn(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    with Warehouse(database=str(tmp_path / "w.duckdb")).connection() as connection:
        yield connection


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    return ModelStore(model_dir=str(tmp_path / "models"))


def _artifact(store: ModelStore, conn: duckdb.DuckDBPyConnection, version: str) -> Path:
    found = store.version(conn, version)
    assert found is not None
    return Path(store.model_dir) / found.artifact_path


def test_a_version_is_registered_with_its_window_parameters_and_hash(
    store: ModelStore, conn: duckdb.DuckDBPyConnection
) -> None:
    saved = store.save(
        conn,
        PARAMS,
        "20260105-clv-abc",
        training_start=date(2025, 1, 6),
        training_end=date(2026, 1, 5),
        params={"penalizer": 0.0},
        metrics={"log_likelihood": -1234.5},
    )
    assert (saved.kind, saved.training_start, saved.training_end) == (
        "clv",
        date(2025, 1, 6),
        date(2026, 1, 5),
    )
    assert saved.params == {"penalizer": 0.0} and saved.metrics == {"log_likelihood": -1234.5}
    data = _artifact(store, conn, saved.model_version).read_bytes()
    assert saved.content_hash == hashlib.sha256(data).hexdigest()
    assert store.load(conn, saved.model_version, CLVParams) == PARAMS


def test_the_version_in_force_is_the_latest_trained_by_the_day(
    store: ModelStore, conn: duckdb.DuckDBPyConnection
) -> None:
    for day in (date(2026, 1, 5), date(2026, 1, 12)):
        store.save(conn, PARAMS, f"{day:%Y%m%d}-clv", training_end=day)
    assert store.in_force(conn, "clv", date(2026, 1, 4)) is None
    assert store.in_force(conn, "clv", date(2026, 1, 11)).model_version == "20260105-clv"
    assert store.in_force(conn, "clv", date(2026, 1, 12)).model_version == "20260112-clv"
    assert [v.model_version for v in store.versions(conn, "clv")] == [
        "20260105-clv",
        "20260112-clv",
    ]


def test_a_failed_step_registers_nothing(
    store: ModelStore, conn: duckdb.DuckDBPyConnection
) -> None:
    with pytest.raises(RuntimeError), transaction(conn):
        store.save(conn, PARAMS, "v-rolled-back", training_end=date(2026, 1, 5))
        raise RuntimeError("the step failed after saving")
    assert store.version(conn, "v-rolled-back") is None


def test_a_missing_artifact_is_an_error_naming_the_version(
    store: ModelStore, conn: duckdb.DuckDBPyConnection
) -> None:
    store.save(conn, PARAMS, "v-missing", training_end=date(2026, 1, 5))
    _artifact(store, conn, "v-missing").unlink()
    with pytest.raises(ModelStoreError, match="'v-missing': artifact missing"):
        store.load(conn, "v-missing", CLVParams)
    with pytest.raises(ModelStoreError, match="'v-unknown' is not in model_registry"):
        store.load(conn, "v-unknown", CLVParams)


def test_a_tampered_artifact_is_refused(store: ModelStore, conn: duckdb.DuckDBPyConnection) -> None:
    store.save(conn, PARAMS, "v-tampered", training_end=date(2026, 1, 5))
    assert store.load(conn, "v-tampered", CLVParams) == PARAMS  # loaded (and cached) once
    path = _artifact(store, conn, "v-tampered")
    other = ModelStore(model_dir=str(path.parent.parent / "other"))
    replacement = CLVParams(**{**PARAMS.to_state(), "r": 99.0})
    other.save(conn, replacement, "v-other", training_end=date(2026, 1, 5))
    path.write_bytes(_artifact(other, conn, "v-other").read_bytes())
    with pytest.raises(ModelStoreError, match="'v-tampered': hash mismatch"):
        store.load(conn, "v-tampered", CLVParams)


def test_a_model_of_another_kind_is_refused(
    store: ModelStore, conn: duckdb.DuckDBPyConnection
) -> None:
    from seg_pipeline.features.nlp import TopicModel

    store.save(conn, PARAMS, "v-clv", training_end=date(2026, 1, 5))
    with pytest.raises(ModelStoreError, match="'v-clv' is a 'clv' model, not 'review_topics'"):
        store.load(conn, "v-clv", TopicModel)


@dataclass
class _Unsafe:
    """Stands for any object a hostile artifact could carry."""

    payload: str


def test_an_artifact_with_untrusted_types_is_refused(
    store: ModelStore, conn: duckdb.DuckDBPyConnection
) -> None:
    import skops.io

    store.save(conn, PARAMS, "v-hostile", training_end=date(2026, 1, 5))
    path = _artifact(store, conn, "v-hostile")
    hostile = skops.io.dumps({"r": _Unsafe("rm -rf")})
    path.write_bytes(hostile)
    digest = hashlib.sha256(hostile).hexdigest()
    conn.execute("update model_registry set content_hash = $h where model_version = 'v-hostile'",
                 {"h": digest})  # fmt: skip
    with pytest.raises(ModelStoreError, match=r"not trusted.*_Unsafe"):
        store.load(conn, "v-hostile", CLVParams)


def _schema(path: Path) -> str:
    with zipfile.ZipFile(path) as archive:
        return archive.read("schema.json").decode()


def test_artifacts_hold_no_project_import_path_and_load_after_a_move(
    store: ModelStore, conn: duckdb.DuckDBPyConnection
) -> None:
    """The saved state names no class of this project, so a class moved or renamed after
    saving (here: another class in another module, with the same kind) still loads it."""
    texts = [f"delivery courier parcel late {w}" for w in ("box", "door")] * 10
    texts += [f"price value money cheap {w}" for w in ("deal", "sale")] * 10
    topics = fit_topic_model(texts, n_topics=2, seed=0)
    store.save(conn, topics, "v-topics", training_end=date(2026, 1, 5))
    store.save(conn, PARAMS, "v-clv", training_end=date(2026, 1, 5))
    for version in ("v-topics", "v-clv"):
        schema = _schema(_artifact(store, conn, version))
        assert "seg_pipeline" not in schema
        assert json.loads(schema)["protocol"] >= 1

    @dataclass(frozen=True)
    class RenamedParams:  # the CLV parameters after a refactor moved and renamed the class
        kind: ClassVar[str] = "clv"
        state: dict[str, Any]

        @classmethod
        def from_state(cls, state: dict[str, Any]) -> Self:
            return cls(state=dict(state))

    moved = store.load(conn, "v-clv", RenamedParams)
    assert moved.state == PARAMS.to_state()
