"""One parsing rule for every timestamp of every source: ``utc_timestamp(value)``.

The rule is a SQL macro (``sql/ingest/utc_timestamp.sql``) that the loaders and every staging
SQL file use; these tests pin what it does with each form a source may deliver, and that no
SQL file parses a timestamp any other way.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path

import pytest

from seg_pipeline.settings import SQL_DIR
from seg_pipeline.sources import CRM_CUSTOMERS, ORDERS, REVIEWS, SOURCES, WEB_EVENTS
from tests.quality.minihouse import MiniHouse, crm_row, order_row, review_row, web_event_row

DAY = date(2026, 3, 10)

CASES = [
    ("2026-03-10T21:08:21Z", datetime(2026, 3, 10, 21, 8, 21)),
    ("2026-03-10T21:08:21.123Z", datetime(2026, 3, 10, 21, 8, 21, 123000)),
    ("2026-03-10 21:08:21+05:30", datetime(2026, 3, 10, 15, 38, 21)),
    ("2026-03-10T21:08:21+0530", datetime(2026, 3, 10, 15, 38, 21)),
    ("2026-03-10T21:08:21-03:00", datetime(2026, 3, 11, 0, 8, 21)),
    ("2026-03-10T21:08:21.5-03:00", datetime(2026, 3, 11, 0, 8, 21, 500000)),
    ("2026-03-10 21:08:21", datetime(2026, 3, 10, 21, 8, 21)),  # no offset: UTC
    ("2026-03-10T21:08:21.654321", datetime(2026, 3, 10, 21, 8, 21, 654321)),
    ("  2026-03-10 21:08:21  ", datetime(2026, 3, 10, 21, 8, 21)),
    ("garbage", None),
    ("2026-13-10 21:08:21", None),
    ("", None),
    (None, None),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_the_rule(tmp_path: Path, text: str | None, expected: datetime | None) -> None:
    with MiniHouse(tmp_path).warehouse.connection() as conn:  # every connection has the rule
        got = conn.execute("SELECT utc_timestamp($v::VARCHAR)", {"v": text}).fetchone()[0]
    assert got == expected


def test_the_rule_does_not_depend_on_the_session_time_zone_for_offsets(tmp_path: Path) -> None:
    with MiniHouse(tmp_path).warehouse.connection() as conn:  # every connection has the rule
        conn.execute("SET TimeZone = 'America/New_York'")
        got = conn.execute("SELECT utc_timestamp('2026-03-10 21:08:21+05:30')").fetchone()[0]
    assert got == datetime(2026, 3, 10, 15, 38, 21)


def test_every_staging_file_parses_timestamps_only_with_the_rule() -> None:
    """No staging SQL casts text to a timestamp itself; each source's event time (and the CRM's
    updated_at) goes through utc_timestamp."""
    cast = re.compile(r"\bas\s+timestamp(tz)?\b|::\s*timestamp", re.IGNORECASE)
    for path in sorted((SQL_DIR / "staging").glob("*.sql")):
        text = path.read_text(encoding="utf-8")
        assert not cast.search(text), f"{path.name} casts to a timestamp itself"
    for source in SOURCES:
        column = source.event_time or "updated_at"
        text = (SQL_DIR / "staging" / f"stg_{source.name}.sql").read_text(encoding="utf-8")
        assert re.search(rf"utc_timestamp\(\s*(source\.)?{column}\s*\)", text), source.name


def test_crm_offsets_are_converted_and_the_latest_version_wins_in_utc(tmp_path: Path) -> None:
    """21:08:21+05:30 is 15:38:21 UTC, earlier than 16:00:00 UTC: the 16:00 version wins."""
    house = MiniHouse(tmp_path)
    rows = [
        crm_row("C1", DAY, city="Later", updated_at="2026-03-10 16:00:00"),
        crm_row("C1", DAY, city="Earlier", updated_at="2026-03-10 21:08:21+05:30"),
        crm_row("C2", DAY, updated_at="2026-03-10 21:08:21+05:30"),
    ]
    house.run(DAY, crm_customers=rows)
    staged = house.rows("SELECT customer_id, city, updated_at FROM stg_crm_customers ORDER BY 1")
    assert staged == [
        {"customer_id": "C1", "city": "Later", "updated_at": datetime(2026, 3, 10, 16, 0)},
        {"customer_id": "C2", "city": "Berlin", "updated_at": datetime(2026, 3, 10, 15, 38, 21)},
    ]


@pytest.mark.parametrize(
    ("source", "row"),
    [
        (CRM_CUSTOMERS, crm_row("C9", DAY, updated_at="yesterday-ish")),
        (ORDERS, order_row("O9", DAY, ordered_at="yesterday-ish")),
        (WEB_EVENTS, web_event_row("E9", DAY, occurred_at="yesterday-ish")),
        (REVIEWS, review_row("R9", DAY, reviewed_at="yesterday-ish")),
    ],
    ids=lambda v: getattr(v, "name", ""),
)
def test_garbage_timestamps_are_quarantined_with_their_text(
    tmp_path: Path, source, row: dict
) -> None:
    house = MiniHouse(tmp_path)
    files = {"crm_customers": [crm_row("C1", DAY)]}
    files[source.name] = [*files.get(source.name, []), row]
    house.run(DAY, **files)
    hits = house.quarantined(f"stg_{source.name}", DAY)
    column = source.event_time or "updated_at"
    assert [(q["rule"], q["reason"]) for q in hits] == [
        ("invalid_timestamp", f"{column} is not a timestamp: yesterday-ish")
    ]
