"""A withdrawn marketing consent takes effect on the day it arrives, and a re-run of an older
day does not select or export the customer again (on the activated month)."""

from __future__ import annotations

import csv
import shutil
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from seg_pipeline.definitions import build_definitions
from seg_pipeline.settings import Settings
from seg_pipeline.sources import CRM_CUSTOMERS
from tests.activation.conftest import ACTIVATION_ASSETS
from tests.conftest import MONTH_END, copy_vault, run_range, warehouse_for

EARLIER = MONTH_END - timedelta(days=5)


def _delivered(settings: Settings, day) -> set[str]:
    assert settings.delivery_dir is not None
    ids: set[str] = set()
    for path in (settings.delivery_dir / day.isoformat()).glob("*.csv"):
        with path.open(newline="") as handle:
            ids |= {row["customer_id"] for row in csv.DictReader(handle)}
    return ids


def _selected(settings: Settings, day) -> set[str]:
    rows = warehouse_for(settings).query(
        "SELECT customer_id FROM audiences WHERE as_of_date = $d", {"d": day}
    )
    return set(rows["customer_id"])


def test_withdrawn_consent_leaves_audiences_and_exports_for_good(
    activated: Settings, tmp_path: Path
) -> None:
    # a copy of the activated month whose landing files this test may edit
    landing = tmp_path / "landing"
    shutil.copytree(activated.landing_dir, landing)
    settings = replace(
        activated,
        landing_dir=landing,
        warehouse_path=tmp_path / "warehouse.duckdb",
        export_dir=tmp_path / "exports",
        delivery_dir=tmp_path / "delivery",
    )
    shutil.copy(activated.warehouse_path, settings.warehouse_path)
    copy_vault(activated.warehouse_path.parent, settings)
    shutil.copytree(activated.delivery_dir, settings.delivery_dir)
    shutil.copytree(activated.export_dir, settings.export_dir)
    customer = sorted(_delivered(settings, EARLIER))[0]

    # the CRM delivers the customer's withdrawal on the month's last day
    crm = CRM_CUSTOMERS.path_for(landing, MONTH_END)
    latest = None
    for path in sorted((landing / CRM_CUSTOMERS.name).glob("*.csv")):
        with path.open(newline="") as handle:
            for row in csv.DictReader(handle):
                if row["customer_id"] == customer:
                    latest = row
    assert latest is not None
    withdrawn = {**latest, "marketing_consent": "false", "updated_at": f"{MONTH_END} 12:00:00"}
    with crm.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, list(CRM_CUSTOMERS.columns), lineterminator="\n")
        writer.writerow(withdrawn)

    defs = build_definitions(settings)
    assert run_range(defs, MONTH_END, MONTH_END).success
    assert customer not in _selected(settings, MONTH_END)
    assert customer not in _delivered(settings, MONTH_END)

    # re-running the earlier day (when consent still held) does not bring them back
    before = _selected(settings, EARLIER)
    assert customer in before
    assert run_range(defs, EARLIER, EARLIER, assets=ACTIVATION_ASSETS).success
    after = _selected(settings, EARLIER)
    assert customer not in after and len(after) >= len(before) - 1
    delivered = _delivered(settings, EARLIER)
    assert customer not in delivered and delivered
