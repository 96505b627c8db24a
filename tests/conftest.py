"""Shared fixtures: one generated month of small data per test session, warehouses per test."""

from __future__ import annotations

import os

# Before anything imports SciPy, which reads it once: scikit-learn's array-API checks of the
# segmentation estimators run instead of skipping (they need it set; NumPy inputs are unchanged).
os.environ.setdefault("SCIPY_ARRAY_API", "1")
# pytest-xdist runs one worker per core: OpenMP (gradient boosting, K-Means) in each worker
# starting a thread per core oversubscribes the cores, and OpenMP threads spin while they
# wait. Before anything loads an OpenMP runtime.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import pickle
import shutil
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from dagster import Definitions, ExecuteInProcessResult
from filelock import FileLock

from seg_pipeline.definitions import build_definitions
from seg_pipeline.generator import GenerationSummary, GeneratorConfig, generate
from seg_pipeline.ops.runs import run_daily_range
from seg_pipeline.privacy.vault import Vault
from seg_pipeline.resources import Warehouse
from seg_pipeline.settings import PSEUDONYMISATION_KEY_ENV, VAULT_KEY_ENV, Settings

MONTH_START = date(2026, 1, 1)
MONTH_END = date(2026, 1, 31)
TEST_KEY = "test-key-not-a-secret"
# The vault's key-encryption key of the tests (32 bytes as hex; a real one is random).
TEST_VAULT_KEY = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
TEST_ENV = {PSEUDONYMISATION_KEY_ENV: TEST_KEY, VAULT_KEY_ENV: TEST_VAULT_KEY}


def set_test_keys() -> None:
    """The tests' keys in the process environment, unless set (session fixtures run before the
    autouse fixture below)."""
    for name, value in TEST_ENV.items():
        os.environ.setdefault(name, value)


@pytest.fixture(autouse=True)
def _pseudonymisation_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in TEST_ENV.items():
        monkeypatch.setenv(name, value)


def built_once(
    tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]
) -> Path:
    """The folder ``name``, filled by ``build`` once per test session.

    Under pytest-xdist the workers share it: the first to ask builds it while holding a file
    lock, the others wait and reuse it (the session's base folder is the workers' parent).
    """
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    folder = base / name
    with FileLock(f"{folder}.lock"):
        if not (folder / ".built").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            build(folder)
            (folder / ".built").touch()
    return folder


def _month_settings(root: Path) -> Settings:
    return Settings.from_env(
        {
            "SEG_DATA_DIR": str(root),
            "SEG_WAREHOUSE": str(root / "unused.duckdb"),
            "SEG_PARTITIONS_START": MONTH_START.isoformat(),
        }
    )


@pytest.fixture(scope="session")
def month(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, GenerationSummary]:
    """A generated month (1,000 customers, default messiness) as landing files."""

    def build(root: Path) -> None:
        settings = _month_settings(root)
        summary = generate(
            GeneratorConfig(
                landing_dir=settings.landing_dir,
                truth_dir=settings.truth_dir,
                start_date=MONTH_START,
                end_date=MONTH_END,
                n_customers=1000,
                seed=7,
                messiness=0.02,
            )
        )
        (root / "summary.pickle").write_bytes(pickle.dumps(summary))

    root = built_once(tmp_path_factory, "month", build)
    return _month_settings(root), pickle.loads((root / "summary.pickle").read_bytes())


def run_range(
    defs: Definitions,
    start: date,
    end: date,
    raise_on_error: bool = True,
    assets: list[str] | None = None,
    op_config: dict | None = None,
) -> ExecuteInProcessResult:
    """The daily job (or ``assets`` of it) over [start, end] as one single-run backfill."""
    return run_daily_range(
        defs, start, end, raise_on_error=raise_on_error, assets=assets, op_config=op_config
    )


@pytest.fixture(scope="session")
def loaded_month(
    month: tuple[Settings, GenerationSummary], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A warehouse file holding the whole month, built once; copy it before changing it."""
    set_test_keys()
    settings, _ = month

    def build(folder: Path) -> None:
        defs = build_definitions(replace(settings, warehouse_path=folder / "warehouse.duckdb"))
        assert run_range(defs, MONTH_START, MONTH_END).success

    return built_once(tmp_path_factory, "loaded", build) / "warehouse.duckdb"


@pytest.fixture
def settings(month: tuple[Settings, GenerationSummary], tmp_path: Path) -> Settings:
    """The month's landing files with an empty warehouse of this test's own."""
    return replace(month[0], warehouse_path=tmp_path / "warehouse.duckdb")


@pytest.fixture
def loaded_settings(settings: Settings, loaded_month: Path) -> Settings:
    """Like ``settings`` but the warehouse (and its vault) start as a copy of the loaded month."""
    shutil.copy(loaded_month, settings.warehouse_path)
    copy_vault(loaded_month.parent, settings)
    return settings


def copy_vault(folder: Path, settings: Settings) -> None:
    """Copy the vault folder beside the warehouse in ``folder`` to ``settings``' vault."""
    shutil.copytree(folder / "vault", settings.vault_file.parent, dirs_exist_ok=True)


def warehouse_for(settings: Settings) -> Warehouse:
    return Warehouse(database=str(settings.warehouse_path), pseudonymisation_key=TEST_KEY)


def vault_for(settings: Settings) -> Vault:
    return Vault(path=str(settings.vault_file), key_encryption_key=TEST_VAULT_KEY)


def own_files(settings: Settings, data_dir: Path) -> Settings:
    """``settings`` with copies of the month's landing files, exports and models in a data
    folder of the test's own, and a delivery folder there."""
    month = settings.data_dir
    for folder in ("landing", "exports", "models"):
        shutil.copytree(month / folder, data_dir / folder)
    return replace(
        settings,
        data_dir=data_dir,
        landing_dir=data_dir / "landing",
        truth_dir=data_dir / "truth",
        model_dir=data_dir / "models",
        export_dir=data_dir / "exports",
        delivery_dir=data_dir / "delivery",
    )
