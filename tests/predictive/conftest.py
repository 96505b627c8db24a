"""Ten generated weeks (1,500 customers, a seed the other tests do not use) staged up to
customer_features and customer_clv: enough history for point-in-time training sets whose
labels look one to three weeks ahead."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest

from seg_pipeline.definitions import build_definitions
from seg_pipeline.generator import GeneratorConfig, generate
from seg_pipeline.predictive.config import PredictiveConfig
from seg_pipeline.predictive.training import Challenger, train_challenger
from seg_pipeline.settings import Settings
from tests.conftest import built_once, run_range, set_test_keys, warehouse_for

HISTORY_START = date(2026, 1, 1)
HISTORY_END = HISTORY_START + timedelta(days=69)  # 2026-03-11
# What the predictive models read, and what those tables are built from.
FEATURE_ASSETS = [
    "raw_crm_customers",
    "raw_orders",
    "raw_web_events",
    "raw_reviews",
    "raw_campaign_sends",
    "stg_crm_customers",
    "stg_orders",
    "stg_web_events",
    "stg_reviews",
    "stg_campaign_sends",
    "web_session_fragments",
    "review_topic_model",
    "review_nlp",
    "customer_feature_state",
    "customer_features",
    "clv_model",
    "customer_clv",
]
# Short horizons for ten weeks of history; churn and purchase look at different windows so
# their labels are not complements of each other.
# A week of sends to 1,500 customers holds about 90 conversions: fewer than the default
# min_labels.
HISTORY_SETTINGS = PredictiveConfig(
    churn_horizon_days=21, purchase_horizon_days=10, next_order_horizon_days=21, min_labels=50
)


def _history_settings(root: Path) -> Settings:
    return Settings.from_env(
        {
            "SEG_DATA_DIR": str(root),
            "SEG_WAREHOUSE": str(root / "warehouse.duckdb"),
            "SEG_PARTITIONS_START": HISTORY_START.isoformat(),
        }
    )


@pytest.fixture(scope="session")
def history(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The ten weeks' settings; their warehouse holds the feature stage of every day. Copy the
    warehouse before changing it."""
    set_test_keys()

    def build(root: Path) -> None:
        settings = _history_settings(root)
        generate(
            GeneratorConfig(
                landing_dir=settings.landing_dir,
                truth_dir=settings.truth_dir,
                start_date=HISTORY_START,
                end_date=HISTORY_END,
                n_customers=1500,
                seed=5,
                messiness=0.02,
            )
        )
        defs = build_definitions(settings)
        run_range(defs, HISTORY_START, HISTORY_END, assets=FEATURE_ASSETS)

    return _history_settings(built_once(tmp_path_factory, "history", build))


@pytest.fixture
def history_copy(history: Settings, tmp_path: Path) -> Settings:
    """The ten weeks with a warehouse and model folder of this test's own."""
    import shutil

    copy = replace(
        history, warehouse_path=tmp_path / "warehouse.duckdb", model_dir=tmp_path / "models"
    )
    shutil.copy(history.warehouse_path, copy.warehouse_path)
    return copy


@pytest.fixture(scope="session")
def challengers(
    history: Settings, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Challenger]:
    """Each target's challenger trained on the last day of the ten weeks, once per session
    (the workers share it; trained on a copy, so the history warehouse stays free)."""
    import pickle
    import shutil

    def build(root: Path) -> None:
        copy = root / "warehouse.duckdb"
        shutil.copy(history.warehouse_path, copy)
        with warehouse_for(replace(history, warehouse_path=copy)).connection() as conn:
            trained = {
                t.name: train_challenger(conn, HISTORY_END, t, HISTORY_SETTINGS)
                for t in HISTORY_SETTINGS.targets()
            }
        copy.unlink()
        (root / "challengers.pickle").write_bytes(pickle.dumps(trained))

    folder = built_once(tmp_path_factory, "challengers", build)
    return pickle.loads((folder / "challengers.pickle").read_bytes())
