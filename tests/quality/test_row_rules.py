"""Row rules on a few hand-written rows: loaded and staged by the real functions, no Dagster.

Each test writes one day's tiny landing files, loads and stages them into a DuckDB file of its
own (:mod:`tests.quality.minihouse`) and asserts the quarantine row with its reason, that the
bad row is not staged, and that the good rows of the day are.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from seg_pipeline.quality.checks import validate_window
from seg_pipeline.quality.suites import ERROR
from seg_pipeline.sources import REVIEWS
from tests.quality.minihouse import MiniHouse, crm_row, review_row

DAY = date(2026, 1, 16)


def _errors(house: MiniHouse, table: str, day: date = DAY) -> list[str]:
    with house.warehouse.connection() as conn:
        report = validate_window(conn, table, day, day)
    return [o.label for o in report.failed if o.severity == ERROR]


# -- a few null keys on a small day: quarantined, the rest of the day goes on -----------------


def test_a_few_null_review_ids_on_a_small_day_do_not_block_the_day(tmp_path: Path) -> None:
    house = MiniHouse(tmp_path)
    reviews = [review_row(f"R{i}", DAY) for i in range(14)]
    reviews += [review_row("", DAY), review_row(None, DAY), review_row("  ", DAY)]
    outcomes = house.run(DAY, crm_customers=[crm_row("C1", DAY)], reviews=reviews)
    assert _errors(house, "raw_reviews") == []
    assert outcomes["reviews"].quarantined == {"null_key": 3}
    assert outcomes["reviews"].rows_written == 14


def test_null_customer_ids_of_a_small_crm_day_do_not_block_the_day(tmp_path: Path) -> None:
    house = MiniHouse(tmp_path)
    rows = [crm_row("C1", DAY), crm_row("", DAY), crm_row("", DAY), crm_row("", DAY)]
    outcomes = house.run(DAY, crm_customers=rows)
    assert _errors(house, "raw_crm_customers") == []
    assert outcomes["crm_customers"].quarantined == {"null_key": 3}
    assert outcomes["crm_customers"].rows_written == 1


def test_many_null_keys_still_fail_the_raw_check_as_the_quarantine_would(tmp_path: Path) -> None:
    """The raw gate judges like the quarantine: 60 of 600 (10%) is within the reviews'
    threshold; 61 is not, and the message says which day and how many."""
    house = MiniHouse(tmp_path)
    reviews = [review_row(f"R{i}", DAY) for i in range(540)] + [review_row(None, DAY)] * 60
    house.run(DAY, crm_customers=[crm_row("C1", DAY)], reviews=reviews)
    assert _errors(house, "raw_reviews") == []

    # one more: the raw gate fails before staging runs (staging would fail the day too)
    house.deliver(REVIEWS, DAY, [*reviews, review_row(None, DAY)])
    house.load(REVIEWS, DAY)
    label = "expect_column_values_to_be_null(_missing_key_beyond_share)"
    assert _errors(house, "raw_reviews") == [label]
    with house.warehouse.connection() as conn:
        report = validate_window(conn, "raw_reviews", DAY, DAY)
    assert report.outcome(label).unexpected_count == 61
    assert report.outcome(label).sample[0] == (
        f"{DAY}: 61 of 601 rows lack review_id; the quarantine takes at most 10% of max(601, 500)"
    )


# -- CRM timestamps older than the allowed lateness -------------------------------------------


def test_crm_change_updated_decades_ago_is_quarantined(tmp_path: Path) -> None:
    house = MiniHouse(tmp_path)
    first = DAY - timedelta(days=10)
    house.run(first, crm_customers=[crm_row("C1", first), crm_row("C2", first)])
    change = crm_row("C1", DAY, city="Paris", updated_at="1999-12-31 23:00:00")
    outcomes = house.run(DAY, crm_customers=[change, crm_row("C2", DAY)])
    assert outcomes["crm_customers"].quarantined == {"too_late": 1}
    hit = house.quarantined("stg_crm_customers", DAY)[0]
    assert hit["rule"] == "too_late"
    assert hit["reason"] == f"updated on 1999-12-31, more than 7 days before arrival on {DAY}"
    staged = house.rows(
        "SELECT customer_id FROM stg_crm_customers WHERE arrival_date = $d", {"d": DAY}
    )
    assert staged == [{"customer_id": "C2"}]
    # the vault keeps every delivered record, the quarantined one too, sealed
    opened = [r for r in house.opened("C1") if r["arrival_date"] == DAY]
    assert [r["email"] for r in opened] == ["c1@example.com"]


def test_crm_first_delivery_may_be_as_old_as_the_signup_but_not_older(tmp_path: Path) -> None:
    """A customer's first delivery (e.g. the initial export of existing customers) carries its
    record's history back to the sign-up; a version older than the sign-up cannot be right."""
    house = MiniHouse(tmp_path)
    rows = [
        crm_row("C1", DAY, signup_date="2021-05-01", updated_at="2023-02-03 04:05:06"),
        crm_row("C2", DAY, signup_date="2021-05-01", updated_at="1970-01-01 00:00:00"),
    ]
    outcomes = house.run(DAY, crm_customers=rows)
    assert outcomes["crm_customers"].quarantined == {"updated_before_signup": 1}
    hit = house.quarantined("stg_crm_customers", DAY)[0]
    assert hit["reason"] == "updated on 1970-01-01, before the customer signed up on 2021-05-01"
    assert house.rows("SELECT customer_id FROM stg_crm_customers") == [{"customer_id": "C1"}]
