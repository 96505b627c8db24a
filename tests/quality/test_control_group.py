"""The campaign send log's control-group rows through the real loader and staging SQL: typed,
never engaged, quarantined when the flag is missing, and the staged day passes its suite."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from seg_pipeline.quality.checks import validate_window
from seg_pipeline.quality.suites import ERROR
from tests.quality.minihouse import MiniHouse, crm_row

DAY = date(2026, 1, 16)


def _send(customer_id: str, control: bool | None, opened: bool = False) -> dict:
    return {
        "campaign_id": "CMP1",
        "customer_id": customer_id,
        "sent_at": datetime(2026, 1, 16, 9, 30, tzinfo=UTC),
        "channel": "email",
        "opened": opened,
        "clicked": opened,
        "converted": False,
        "control_group": control,
    }


def test_control_rows_are_staged_unengaged_and_a_missing_flag_is_quarantined(
    tmp_path: Path,
) -> None:
    house = MiniHouse(tmp_path)
    customers = [crm_row(f"C{i}", DAY) for i in range(1, 13)]
    sends = [_send(f"C{i}", False, opened=i % 2 == 0) for i in range(1, 10)]
    sends += [
        _send("C10", True),
        _send("C11", True, opened=True),  # a holdout the platform says was opened
        _send("C12", None),
    ]
    outcomes = house.run(DAY, crm_customers=customers, campaign_sends=sends)
    assert outcomes["campaign_sends"].quarantined == {"unknown_control_group": 1}
    (held,) = house.quarantined("stg_campaign_sends")
    assert "control_group is empty" in held["reason"]
    staged = {
        r["customer_id"]: r
        for r in house.rows("SELECT * FROM stg_campaign_sends ORDER BY customer_id")
    }
    assert set(staged) == {f"C{i}" for i in range(1, 12)}
    assert [c for c, r in staged.items() if r["is_control_group"]] == ["C10", "C11"]
    for customer in ("C10", "C11"):
        row = staged[customer]
        assert not (row["is_opened"] or row["is_clicked"] or row["is_converted"])
    assert staged["C2"]["is_opened"] and staged["C2"]["is_clicked"]
    with house.warehouse.connection() as conn:
        report = validate_window(conn, "stg_campaign_sends", DAY, DAY)
    assert [o.label for o in report.failed if o.severity == ERROR] == []
