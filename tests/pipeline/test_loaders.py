"""Loading single landing files: formats, rejects and clear errors, without Dagster."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from seg_pipeline.ingest import loaders
from seg_pipeline.ingest.loaders import LandingFileError, ensure_raw_tables, load_file
from seg_pipeline.quality.quarantine import QualityPolicy
from seg_pipeline.resources import Warehouse
from seg_pipeline.sources import CAMPAIGN_SENDS, ORDERS, REVIEWS, Source
from tests.quality.minihouse import load_day

DAY = date(2026, 1, 3)
ORDER_HEADER = ",".join(ORDERS.columns)
GOOD_ORDER = "O1,1,C1,2026-01-03T14:22:10+01:00,P1,home,2,9.99,0.00,web,completed"


def _load(tmp_path: Path, source: Source, content: bytes):
    path = source.path_for(tmp_path / "landing", DAY)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    warehouse = Warehouse(database=str(tmp_path / "w.duckdb"), pseudonymisation_key="k")
    return load_day(warehouse, source, path, DAY, QualityPolicy()), warehouse


def test_csv_rows_are_loaded_as_text_with_their_origin(tmp_path: Path) -> None:
    result, warehouse = _load(tmp_path, ORDERS, f"{ORDER_HEADER}\n{GOOD_ORDER}\n".encode())
    assert result.rows_loaded == 1 and result.rows_rejected == 0
    row = warehouse.query("SELECT * FROM raw_orders").row(0, named=True)
    assert row["unit_price"] == "9.99"
    assert row["_partition_date"] == DAY
    assert row["_record_number"] == 2  # the line in the file, after the header
    assert row["_source_file"].endswith("orders/2026-01-03.csv")


def test_utf8_bom_does_not_hide_the_first_column(tmp_path: Path) -> None:
    content = b"\xef\xbb\xbf" + f"{ORDER_HEADER}\n{GOOD_ORDER}\n".encode()
    result, warehouse = _load(tmp_path, ORDERS, content)
    assert result.rows_loaded == 1
    assert warehouse.query("SELECT order_id FROM raw_orders").item() == "O1"


def test_malformed_csv_line_is_rejected_with_line_and_kept_text(tmp_path: Path) -> None:
    bad = "O2,1,C2,2026-01-03T10:00:00+00:00,P1,home,1"  # too few fields
    content = f"{ORDER_HEADER}\n{GOOD_ORDER}\n{bad}\n{GOOD_ORDER.replace('O1', 'O3')}\n"
    result, warehouse = _load(tmp_path, ORDERS, content.encode())
    assert result.rows_loaded == 2 and result.rows_rejected == 1
    reject = warehouse.query("SELECT * FROM quarantine").row(0, named=True)
    assert reject["line_number"] == 3 and reject["stage"] == "load"
    assert reject["raw_record"].startswith("O2,1,C2")
    assert reject["rule"] == "missing_columns"
    assert reject["table_name"] == "raw_orders" and reject["source_file"].endswith(".csv")


def test_non_utf8_bytes_are_rejected_not_lost(tmp_path: Path) -> None:
    bad = b"O2,1,C2,2026-01-03T10:00:00+00:00,P1,caf\xe9,1,1.00,0,web,completed"
    content = f"{ORDER_HEADER}\n{GOOD_ORDER}\n".encode() + bad + b"\n"
    result, warehouse = _load(tmp_path, ORDERS, content)
    assert result.rows_loaded == 1 and result.rows_rejected == 1
    assert warehouse.query("SELECT line_number FROM quarantine").item() == 3


def test_missing_required_column_names_file_and_column(tmp_path: Path) -> None:
    header = ORDER_HEADER.replace(",unit_price", "")
    with pytest.raises(LandingFileError, match=r"orders/2026-01-03\.csv.*unit_price"):
        _load(tmp_path, ORDERS, f"{header}\nO1\n".encode())


def test_extra_column_is_reported_and_ignored(tmp_path: Path) -> None:
    content = f"{ORDER_HEADER},loyalty_tier\n{GOOD_ORDER},gold\n"
    result, warehouse = _load(tmp_path, ORDERS, content.encode())
    assert result.extra_columns == ["loyalty_tier"]
    assert "loyalty_tier" not in warehouse.query("SELECT * FROM raw_orders").columns


def test_missing_and_empty_files_fail_clearly(tmp_path: Path) -> None:
    warehouse = Warehouse(database=str(tmp_path / "w.duckdb"), pseudonymisation_key="k")
    path = ORDERS.path_for(tmp_path, DAY)
    with warehouse.connection() as conn:
        ensure_raw_tables(conn, ORDERS)
        with pytest.raises(LandingFileError, match=r"missing.*orders/2026-01-03\.csv"):
            load_file(conn, ORDERS, path, DAY)
    with pytest.raises(LandingFileError, match="empty"):
        _load(tmp_path, ORDERS, b"")


def test_json_lines_keep_valid_objects_and_reject_broken_lines(tmp_path: Path) -> None:
    good = (
        '{"review_id":"R1","customer_id":"C1","product_id":"P1",'
        '"reviewed_at":"2026-01-03T10:00:00+01:00","rating":5,"review_text":"Great, \\"really\\""}'
    )
    content = "\n".join([good, '{"review_id":"R2",', "[1, 2]", good.replace("R1", "R3")]) + "\n"
    result, warehouse = _load(tmp_path, REVIEWS, content.encode())
    assert result.rows_loaded == 2 and result.rows_rejected == 2
    rows = warehouse.query("SELECT review_id, rating, review_text FROM raw_reviews ORDER BY 1")
    assert rows.to_dicts()[0] == {
        "review_id": "R1",
        "rating": "5",
        "review_text": 'Great, "really"',
    }
    lines = warehouse.query("SELECT line_number FROM quarantine ORDER BY 1")
    assert lines["line_number"].to_list() == [2, 3]


def test_json_keys_are_sampled_but_a_missing_column_is_looked_for_in_every_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Keys come from every 5th line here (10 lines, a sample of 2: lines 5 and 10). Line 4's
    # extra key is outside the sample, an every-line one is not.
    monkeypatch.setattr(loaders, "KEY_SAMPLE_LINES", 2)
    line = (
        '{{"review_id":"R{i}","customer_id":"C1","product_id":"P1",{rating}{extra}'
        '"reviewed_at":"2026-01-03T10:00:00+01:00","review_text":"ok","channel":"app"}}'
    )

    def file(rated: range) -> bytes:
        return "".join(
            line.format(
                i=i,
                rating='"rating":4,' if i in rated else "",
                extra='"coupon":"X",' if i == 4 else "",
            )
            + "\n"
            for i in range(1, 11)
        ).encode()

    result, _ = _load(tmp_path / "all", REVIEWS, file(range(1, 11)))
    assert result.rows_loaded == 10 and result.extra_columns == ["channel"]
    # Only line 3 has a rating: the sample lacks the column, so every line is read for keys.
    result, warehouse = _load(tmp_path / "one", REVIEWS, file(range(3, 4)))
    assert result.extra_columns == ["channel", "coupon"]
    assert warehouse.query("SELECT count(rating) AS n FROM raw_reviews").item() == 1
    with pytest.raises(LandingFileError, match=r"reviews/2026-01-03\.jsonl lacks.*rating"):
        _load(tmp_path / "none", REVIEWS, file(range(0)))


def _sends_frame(**overrides: pl.Series) -> pl.DataFrame:
    frame = pl.DataFrame(
        {
            "campaign_id": ["CMP1", "CMP1"],
            "customer_id": ["C1", "C2"],
            "sent_at": pl.Series(
                ["2026-01-03 09:00:00", "2026-01-03 09:00:01"], dtype=pl.String
            ).str.to_datetime(time_zone="UTC"),
            "channel": ["email", "sms"],
            "opened": [True, False],
            "clicked": [False, False],
            "converted": [False, False],
            "control_group": [False, True],
        }
    )
    return frame.with_columns(**overrides)


def test_parquet_is_loaded_in_declared_types(tmp_path: Path) -> None:
    path = tmp_path / "sends.parquet"
    _sends_frame().write_parquet(path)
    result, warehouse = _load(tmp_path, CAMPAIGN_SENDS, path.read_bytes())
    assert result.rows_loaded == 2
    row = warehouse.query("SELECT * FROM raw_campaign_sends ORDER BY customer_id").row(
        0, named=True
    )
    assert row["opened"] is True and row["_record_number"] == 1


def test_parquet_with_changed_type_fails_naming_the_column(tmp_path: Path) -> None:
    path = tmp_path / "sends.parquet"
    _sends_frame(opened=pl.Series(["yes", "no"])).write_parquet(path)
    with pytest.raises(LandingFileError, match="column opened has type VARCHAR, expected BOOLEAN"):
        _load(tmp_path, CAMPAIGN_SENDS, path.read_bytes())


def _orders_on(day: date, count: int, prefix: str) -> str:
    lines = [
        f"{prefix}{i},1,C1,{day.isoformat()}T10:00:00+00:00,P1,home,1,9.99,0,web,completed"
        for i in range(count)
    ]
    return "\n".join([ORDER_HEADER, *lines]) + "\n"


def _load_day(warehouse: Warehouse, root: Path, day: date, content: str) -> None:
    path = ORDERS.path_for(root, day)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")
    load_day(warehouse, ORDERS, path, day, QualityPolicy())


def test_a_day_of_only_late_rows_is_not_taken_for_another_days_file(tmp_path: Path) -> None:
    warehouse = Warehouse(database=str(tmp_path / "w.duckdb"), pseudonymisation_key="k")
    busy = date(2026, 1, 1)
    _load_day(warehouse, tmp_path, busy, _orders_on(busy, 200, "A"))
    # Jan 3 brings nothing of its own, only 30 late lines of Jan 1: a quiet day, not a copy
    _load_day(warehouse, tmp_path, date(2026, 1, 3), _orders_on(busy, 30, "L"))
    # Jan 4 brings Jan 1's whole file again under its own name: that is a misnamed file
    with pytest.raises(LandingFileError, match=r"mostly 2026-01-01: it looks like the file"):
        _load_day(warehouse, tmp_path, date(2026, 1, 4), _orders_on(busy, 200, "A"))


# -- files cut off in transfer ------------------------------------------------------------------


def test_csv_cut_off_in_its_last_record_fails_naming_the_file(tmp_path: Path) -> None:
    content = f"{ORDER_HEADER}\n{GOOD_ORDER}\n{GOOD_ORDER.replace('O1', 'O2')}\n"
    cut = content[: content.rindex("9.99")]  # no final newline, last record incomplete
    with pytest.raises(LandingFileError, match=r"orders/2026-01-03\.csv is incomplete.*line 3"):
        _load(tmp_path, ORDERS, cut.encode())


def test_json_lines_cut_off_in_the_last_record_fail_naming_the_file(tmp_path: Path) -> None:
    good = '{"review_id":"R1","customer_id":"C1","product_id":"P1","reviewed_at":"2026-01-03T10:00:00Z","rating":5,"review_text":"ok"}'  # noqa: E501
    content = f"{good}\n{good.replace('R1', 'R2')[:60]}"
    with pytest.raises(LandingFileError, match=r"reviews/2026-01-03\.jsonl is incomplete.*line 2"):
        _load(tmp_path, REVIEWS, content.encode())


def test_a_complete_last_record_without_final_newline_loads(tmp_path: Path) -> None:
    result, _ = _load(tmp_path, ORDERS, f"{ORDER_HEADER}\n{GOOD_ORDER}".encode())
    assert result.rows_loaded == 1 and result.rows_rejected == 0


def test_a_broken_last_line_with_its_newline_is_only_that_lines_problem(tmp_path: Path) -> None:
    content = f"{ORDER_HEADER}\n{GOOD_ORDER}\nO2,1,C2\n"
    result, _ = _load(tmp_path, ORDERS, content.encode())
    assert result.rows_loaded == 1 and result.rows_rejected == 1
