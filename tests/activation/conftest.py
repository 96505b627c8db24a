"""The month's warehouse with the activation stage run by Dagster over its last two weeks,
following a playbook that selects on scores every day has (no champion model is needed)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from seg_pipeline.definitions import build_definitions
from seg_pipeline.settings import Settings
from tests.conftest import MONTH_END, built_once, copy_vault, run_range

ACTIVATION_START = MONTH_END - timedelta(days=13)
ACTIVATION_ASSETS = ["recommendations", "audiences", "campaign_exports", "campaign_lift"]
PLAYBOOK = """\
seed: 11
campaigns:
  - id: likely_buyers_email
    channel: email
    when: [prob_alive > 0.6]
    holdout_share: 0.3
    frequency_cap: {max_messages: 12, days: 7}
    measurement_window_days: 5
  - id: top_push
    channel: push
    rank_by: prob_alive
    max_audience: 40
    holdout_share: 0.5
    frequency_cap: {max_messages: 12, days: 7}
    measurement_window_days: 3
"""


def activated_settings(root: Path, month_settings: Settings) -> Settings:
    return replace(
        month_settings,
        warehouse_path=root / "warehouse.duckdb",
        playbook_path=root / "playbook.yaml",
        export_dir=root / "exports",
        delivery_dir=root / "delivery",
    )


@pytest.fixture(scope="session")
def activated(month, loaded_month: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings of a copy of the loaded month whose activation tables cover its last 14 days
    (audience and delivery exports written); copy the warehouse before changing it."""

    def build(root: Path) -> None:
        settings = activated_settings(root, month[0])
        shutil.copy(loaded_month, settings.warehouse_path)
        copy_vault(loaded_month.parent, settings)
        settings.playbook_path.write_text(PLAYBOOK)
        result = run_range(
            build_definitions(settings), ACTIVATION_START, MONTH_END, assets=ACTIVATION_ASSETS
        )
        assert result.success

    return activated_settings(built_once(tmp_path_factory, "activated", build), month[0])
