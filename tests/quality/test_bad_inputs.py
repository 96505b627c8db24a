"""The bad-input corpus: one test per kind of bad landing file.

Each test replaces one landing file of one day in a copy of a loaded month and asserts either a
clear error (naming file, and column where there is one) with the warehouse left exactly as it
was, or a quarantine row with its reason and nothing of the bad row in staging; and always that
every other day is unchanged.

Whole-file problems run the day through the real daily job (Dagster, with the checks): what
they test is that a failed run changes nothing. Row problems only need the row rules, so they
load and stage the day with the functions the assets call (``Corpus.stage``), in a fraction of
the time.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from seg_pipeline.definitions import build_definitions
from seg_pipeline.quality.quarantine import QualityPolicy
from seg_pipeline.settings import Settings
from seg_pipeline.sources import (
    CAMPAIGN_SENDS,
    ORDERS,
    RAW_PARTITION_COLUMN,
    REVIEWS,
    SOURCES,
    STAGING_PARTITION_COLUMN,
    WEB_EVENTS,
    Source,
)
from seg_pipeline.staging.models import MODELS
from tests.conftest import MONTH_START, run_range, warehouse_for
from tests.helpers import fingerprint
from tests.quality.minihouse import load_day, stage_days

DAY = MONTH_START + timedelta(days=15)
# Every table a raw or staging asset writes, with its partition column.
TABLES = {
    **{s.raw_table: RAW_PARTITION_COLUMN for s in SOURCES},
    **{m.table: STAGING_PARTITION_COLUMN for m in MODELS},
    "quarantine": STAGING_PARTITION_COLUMN,
}


def _fingerprints(path: Path, where: str) -> dict[str, tuple]:
    with duckdb.connect(str(path), read_only=True) as conn:
        return {
            t: fingerprint(conn, f"(SELECT * FROM {t} WHERE {c} {where})")
            for t, c in TABLES.items()
        }


@dataclass
class Corpus:
    """A private copy of the loaded month whose landing files a test may break."""

    settings: Settings
    delivered: Path  # the month's landing files as generated

    def path(self, source: Source, day: date = DAY) -> Path:
        return source.path_for(self.settings.landing_dir, day)

    def lines(self, source: Source) -> list[str]:
        return self.path(source).read_text(encoding="utf-8").splitlines()

    def write(self, source: Source, content: str | bytes) -> None:
        data = content.encode("utf-8") if isinstance(content, str) else content
        self.path(source).write_bytes(data)

    def run(self, *sources: Source):
        """Run the day for the sources whose files a test broke (default: orders): their raw and
        staging assets, with their checks."""
        names = [s.name for s in sources] or ["orders"]
        assets = [f"{p}_{n}" for n in names for p in ("raw", "stg")]
        with self._other_days_unchanged():
            return run_range(
                build_definitions(self.settings), DAY, DAY, raise_on_error=False, assets=assets
            )

    def stage(self, *sources: Source) -> None:
        """Load and stage the day for the sources whose files a test broke (default: orders)
        with the functions the raw and staging assets call, without Dagster and the checks:
        enough for row rules. Raises what the asset would fail with."""
        warehouse, policy = warehouse_for(self.settings), QualityPolicy()
        with self._other_days_unchanged():
            for source in sources or (ORDERS,):
                load_day(warehouse, source, self.path(source), DAY, policy)
                stage_days(warehouse, source.staging_table, DAY, DAY, policy)

    @contextmanager
    def _other_days_unchanged(self) -> Iterator[None]:
        before_other = _fingerprints(self.settings.warehouse_path, f"<> DATE '{DAY}'")
        self.before_all = _fingerprints(self.settings.warehouse_path, "IS NOT NULL")
        yield
        after_other = _fingerprints(self.settings.warehouse_path, f"<> DATE '{DAY}'")
        assert after_other == before_other, "another day's data changed"

    def query(self, sql: str, params: dict | None = None) -> list[tuple]:
        with duckdb.connect(str(self.settings.warehouse_path), read_only=True) as conn:
            return conn.execute(sql, params or {}).fetchall()

    def unchanged(self) -> bool:
        return _fingerprints(self.settings.warehouse_path, "IS NOT NULL") == self.before_all

    def quarantined(self, table: str) -> list[dict]:
        rows = self.query(
            "SELECT rule, reason, source_file, line_number, raw_record FROM quarantine "
            "WHERE table_name = $t AND arrival_date = $d ORDER BY line_number",
            {"t": table, "d": DAY},
        )
        keys = ("rule", "reason", "source_file", "line_number", "raw_record")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def staged_keys(self, table: str, key: str) -> set[str]:
        rows = self.query(f"SELECT {key} FROM {table} WHERE arrival_date = $d", {"d": DAY})
        return {r[0] for r in rows}


@pytest.fixture
def corpus(loaded_settings: Settings, tmp_path: Path) -> Corpus:
    """The loaded month with a private landing folder holding the day's files of every source
    (the only files a run of the day reads)."""
    landing = tmp_path / "landing"
    for source in SOURCES:
        path = source.path_for(landing, DAY)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source.path_for(loaded_settings.landing_dir, DAY), path)
    return Corpus(replace(loaded_settings, landing_dir=landing), loaded_settings.landing_dir)


def _error(result) -> str:
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failures, "the run did not fail"
    return " | ".join(str(e.event_specific_data.error) for e in failures)


def _csv_rows(corpus: Corpus, source: Source) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(corpus.path(source).read_text(encoding="utf-8"))))
    return rows[0], rows[1:]


def _write_csv(corpus: Corpus, source: Source, header: list[str], rows: list[list[str]]) -> None:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([header, *rows])
    corpus.write(source, out.getvalue())


def _set_order_field(corpus: Corpus, index: int, **fields: str) -> list[str]:
    """Change fields of the order line at ``index``; returns the changed row."""
    header, rows = _csv_rows(corpus, ORDERS)
    for name, value in fields.items():
        rows[index][header.index(name)] = value
    _write_csv(corpus, ORDERS, header, rows)
    return rows[index]


def _order_quarantined(corpus: Corpus, row_index: int, rule: str, text: str) -> None:
    """The changed line is quarantined with ``rule``, and its order line is not staged."""
    corpus.stage()
    hits = [q for q in corpus.quarantined("stg_orders") if q["line_number"] == row_index + 2]
    assert [q["rule"] for q in hits] == [rule]
    assert text in hits[0]["reason"]
    assert hits[0]["source_file"].endswith(f"orders/{DAY}.csv")


# -- whole-file problems: a clear error and the warehouse exactly as it was -----------------


def test_empty_file(corpus: Corpus) -> None:
    corpus.write(ORDERS, b"")
    message = _error(corpus.run())
    assert "empty" in message and f"orders/{DAY}.csv" in message
    assert corpus.unchanged()


def test_missing_file(corpus: Corpus) -> None:
    corpus.path(ORDERS).unlink()
    message = _error(corpus.run())
    assert "missing" in message and f"orders/{DAY}.csv" in message
    assert corpus.unchanged()


def test_wrong_delimiter(corpus: Corpus) -> None:
    corpus.write(ORDERS, "\n".join(line.replace(",", ";") for line in corpus.lines(ORDERS)))
    message = _error(corpus.run())
    assert f"orders/{DAY}.csv" in message and "lacks required column(s) order_id" in message
    assert corpus.unchanged()


def test_missing_required_column(corpus: Corpus) -> None:
    header, rows = _csv_rows(corpus, ORDERS)
    drop = header.index("unit_price")
    _write_csv(
        corpus, ORDERS, header[:drop] + header[drop + 1 :], [r[:drop] + r[drop + 1 :] for r in rows]
    )
    message = _error(corpus.run())
    assert f"orders/{DAY}.csv lacks required column(s) unit_price" in message
    assert corpus.unchanged()


def test_duplicate_column_names(corpus: Corpus) -> None:
    header, rows = _csv_rows(corpus, ORDERS)
    _write_csv(corpus, ORDERS, [*header, "status"], [[*r, "completed"] for r in rows])
    message = _error(corpus.run())
    assert "duplicate column names" in message and f"orders/{DAY}.csv" in message
    assert corpus.unchanged()


def test_parquet_with_changed_type(corpus: Corpus) -> None:
    frame = pl.read_parquet(corpus.path(CAMPAIGN_SENDS))
    frame.with_columns(pl.col("opened").cast(pl.String)).write_parquet(corpus.path(CAMPAIGN_SENDS))
    message = _error(corpus.run(CAMPAIGN_SENDS))
    assert f"campaign_sends/{DAY}.parquet column opened has type VARCHAR" in message
    assert corpus.unchanged()


def test_parquet_with_renamed_column(corpus: Corpus) -> None:
    frame = pl.read_parquet(corpus.path(CAMPAIGN_SENDS))
    frame.rename({"sent_at": "sent_time"}).write_parquet(corpus.path(CAMPAIGN_SENDS))
    message = _error(corpus.run(CAMPAIGN_SENDS))
    assert f"campaign_sends/{DAY}.parquet lacks required column(s) sent_at" in message
    assert corpus.unchanged()


def test_file_for_the_wrong_date(corpus: Corpus) -> None:
    earlier = ORDERS.path_for(corpus.delivered, DAY - timedelta(days=3))
    corpus.write(ORDERS, earlier.read_bytes())
    message = _error(corpus.run())
    assert f"orders/{DAY}.csv is the file for {DAY}, but" in message
    assert f"mostly {DAY - timedelta(days=3)}" in message
    assert corpus.unchanged()


def test_file_cut_off_in_its_last_record(corpus: Corpus) -> None:
    """A file cut off in transfer (no final newline, last record incomplete) fails whole: loading
    its first part would hide the loss of the rest."""
    data = corpus.path(ORDERS).read_bytes()
    cut = data.rstrip(b"\n").rfind(b",", 0, len(data) - 40)
    corpus.write(ORDERS, data[:cut])
    message = _error(corpus.run())
    last_line = len(data[:cut].splitlines())
    assert f"orders/{DAY}.csv is incomplete" in message and f"line {last_line}:" in message
    assert corpus.unchanged()


# -- row problems: the row in quarantine with its reason, the rest of the day staged ---------


def test_non_utf8_bytes(corpus: Corpus) -> None:
    lines = corpus.path(ORDERS).read_bytes().split(b"\n")
    lines[3] = lines[3].replace(b",", b",\xff\xfe", 1)
    corpus.write(ORDERS, b"\n".join(lines))
    corpus.stage()
    hits = corpus.quarantined("raw_orders")
    assert [(q["rule"], q["line_number"]) for q in hits if q["rule"] == "invalid_encoding"] == [
        ("invalid_encoding", 4)
    ]


def test_utf8_bom_changes_nothing(corpus: Corpus) -> None:
    corpus.write(ORDERS, b"\xef\xbb\xbf" + corpus.path(ORDERS).read_bytes())
    corpus.stage()
    assert corpus.unchanged()


def test_extra_column_is_recorded_and_ignored(corpus: Corpus) -> None:
    # Edit physical lines, not parsed records: the day's file also holds planted broken lines
    # (an unterminated quote, a surplus field) that must stay broken in the same way.
    lines = corpus.path(ORDERS).read_text(encoding="utf-8").split("\n")
    edited = [lines[0] + ",coupon_code"] + [f"{line},XMAS" if line else line for line in lines[1:]]
    corpus.write(ORDERS, "\n".join(edited))
    quarantine = (
        "SELECT table_name, rule, source_file, line_number FROM quarantine "
        "WHERE arrival_date = $d ORDER BY ALL"
    )
    quarantined_before = corpus.query(quarantine, {"d": DAY})
    result = corpus.run()
    assert result.success
    meta = result.asset_materializations_for_node("raw_orders")[0].metadata
    assert meta["extra_columns_ignored"].value == "coupon_code"
    after = _fingerprints(corpus.settings.warehouse_path, "IS NOT NULL")
    # every table as before; the quarantined lines are the same lines for the same reasons
    # (their raw text now ends in ",XMAS")
    assert {t: v for t, v in after.items() if t != "quarantine"} == {
        t: v for t, v in corpus.before_all.items() if t != "quarantine"
    }
    assert corpus.query(quarantine, {"d": DAY}) == quarantined_before


def test_wrong_type_in_a_numeric_column(corpus: Corpus) -> None:
    _set_order_field(corpus, 2, quantity="two")
    _order_quarantined(corpus, 2, "invalid_quantity", "quantity is not a positive integer: two")


def test_null_key(corpus: Corpus) -> None:
    _set_order_field(corpus, 2, order_id="")
    _order_quarantined(corpus, 2, "null_key", "order_id or line_number is empty")


def test_duplicate_keys(corpus: Corpus) -> None:
    header, rows = _csv_rows(corpus, ORDERS)
    conflicting = list(rows[0])
    conflicting[header.index("quantity")] = "99"
    _write_csv(corpus, ORDERS, header, [rows[0], *rows, conflicting, rows[1]])
    corpus.stage()
    hits = [q for q in corpus.quarantined("stg_orders") if q["rule"] == "duplicate_key"]
    # the first delivery of order line 1 conflicts with the last one and is quarantined twice
    # (lines 2 and 3 are the same content); the exact repeat of line 2 is dropped
    assert [q["line_number"] for q in hits] == [2, 3]
    staged = corpus.query(
        "SELECT quantity FROM stg_orders WHERE arrival_date = $d AND order_id = $o "
        "AND line_number = $n",
        {"d": DAY, "o": rows[0][0], "n": int(rows[0][1])},
    )
    assert staged == [(99,)]


def test_future_timestamp(corpus: Corpus) -> None:
    _set_order_field(corpus, 2, ordered_at="2027-03-01T10:00:00+01:00")
    _order_quarantined(corpus, 2, "future_timestamp", "ordered on 2027-03-01")


def test_timestamp_far_in_the_past(corpus: Corpus) -> None:
    _set_order_field(corpus, 2, ordered_at="1999-12-31T23:00:00+00:00")
    _order_quarantined(corpus, 2, "too_late", "ordered on 1999-12-31, more than 7 days")


@pytest.mark.parametrize("price", ["-5.00", "0.00"])
def test_negative_and_zero_prices(corpus: Corpus, price: str) -> None:
    _set_order_field(corpus, 2, unit_price=price)
    _order_quarantined(corpus, 2, "non_positive_price", f"not a positive amount: {price}")


def test_unknown_customer(corpus: Corpus) -> None:
    _set_order_field(corpus, 2, customer_id="C99999999")
    _order_quarantined(corpus, 2, "unknown_customer", "customer C99999999 is not in the CRM")


def test_unterminated_quote_loses_only_its_line(corpus: Corpus) -> None:
    lines = corpus.lines(ORDERS)
    lines[4] = lines[4].replace(",", ',"', 1)
    corpus.write(ORDERS, "\n".join(lines) + "\n")
    corpus.stage()
    hits = corpus.quarantined("raw_orders")
    assert ("unterminated_quote", 5) in {(q["rule"], q["line_number"]) for q in hits}
    next_order = next(csv.reader([lines[5]]))[0]
    assert next_order in corpus.staged_keys("stg_orders", "order_id")


def _is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def _review_lines(corpus: Corpus) -> list[dict]:
    return [json.loads(line) for line in corpus.lines(REVIEWS) if line.startswith("{")]


def _write_reviews(corpus: Corpus, records: list[dict]) -> None:
    corpus.write(REVIEWS, "".join(json.dumps(r) + "\n" for r in records))


def test_one_megabyte_review_text(corpus: Corpus) -> None:
    records = _review_lines(corpus)
    records[0]["review_text"] = "Great product. " * 70_000  # about 1 MB
    _write_reviews(corpus, records)
    corpus.stage(REVIEWS)
    hits = corpus.quarantined("stg_reviews")
    assert [q["rule"] for q in hits] == ["text_too_long"]
    assert re.search(r"review_text has 10[45]\d{4} characters, more than 20000", hits[0]["reason"])
    assert records[0]["review_id"] not in corpus.staged_keys("stg_reviews", "review_id")


@pytest.mark.parametrize(
    "text",
    [
        "'); DROP TABLE stg_orders; --",
        '=HYPERLINK("http://example.invalid","click")',
        "+1 would buy again",
        "-- not bad at all",
        "@everyone read this",
    ],
)
def test_text_that_looks_like_code_is_stored_verbatim_and_inert(corpus: Corpus, text: str) -> None:
    records = _review_lines(corpus)
    records[0]["review_text"] = text
    _write_reviews(corpus, records)
    corpus.stage(REVIEWS)
    stored = corpus.query(
        "SELECT review_text FROM stg_reviews WHERE arrival_date = $d AND review_id = $r",
        {"d": DAY, "r": records[0]["review_id"]},
    )
    assert stored == [(text,)]
    assert corpus.query("SELECT count(*) FROM stg_orders")[0][0] > 0  # nothing executed


def test_wrong_json_type(corpus: Corpus) -> None:
    records = _review_lines(corpus)
    records[0]["rating"] = "five"
    _write_reviews(corpus, records)
    corpus.stage(REVIEWS)
    hits = corpus.quarantined("stg_reviews")
    assert [(q["rule"], q["line_number"]) for q in hits] == [("invalid_rating", 1)]
    assert "five" in hits[0]["reason"]


def test_malformed_json_lines(corpus: Corpus) -> None:
    lines = corpus.lines(WEB_EVENTS)
    good = sum(1 for x in lines if _is_json_object(x))
    lines.insert(5, lines[5][: len(lines[5]) // 2])
    lines.insert(8, "not json at all")
    corpus.write(WEB_EVENTS, "\n".join(lines) + "\n")
    corpus.stage(WEB_EVENTS)
    hits = [q for q in corpus.quarantined("raw_web_events") if q["line_number"] in (6, 9)]
    assert [q["rule"] for q in hits] == ["invalid_json", "invalid_json"]
    raw = corpus.query("SELECT count(*) FROM raw_web_events WHERE _partition_date = $d", {"d": DAY})
    assert raw[0][0] == good


def test_web_event_repeats_and_session_stitching(corpus: Corpus) -> None:
    """The last delivery of an event id wins (an exact repeat is dropped, a different earlier
    version quarantined); an anonymous event takes the customer of a kept row of its session,
    never one whose own row was quarantined."""
    lines = corpus.lines(WEB_EVENTS)
    kept = corpus.query(
        "SELECT min(event_id) FROM stg_web_events WHERE arrival_date = $d AND NOT is_late "
        "AND customer_id IS NOT NULL",
        {"d": DAY},
    )[0][0]
    template = next(json.loads(x) for x in lines if f'"{kept}"' in x)
    known = corpus.query(
        "SELECT min(customer_id) FROM stg_crm_customers WHERE arrival_date < $d", {"d": DAY}
    )[0][0]

    def event(event_id: str, session: str, customer: str | None, **extra: str) -> str:
        return json.dumps(
            {
                **template,
                "event_id": event_id,
                "session_id": session,
                "customer_id": customer,
                "anonymous_id": None if customer else f"anon-{event_id}",
                **extra,
            }
        )

    added = [
        event("ev-a", "s-known", known),
        event("ev-b", "s-known", None),
        event("ev-c", "s-unknown", "C-NOT-IN-CRM"),
        event("ev-d", "s-unknown", None),
        event("ev-e", "s-repeat", known),
        event("ev-e", "s-repeat", known),
        event("ev-f", "s-versions", known, url="/old"),
        event("ev-f", "s-versions", known, url="/new"),
    ]
    first = len(lines) + 1
    corpus.write(WEB_EVENTS, "\n".join(lines + added) + "\n")
    corpus.stage(WEB_EVENTS)

    staged = corpus.query(
        "SELECT event_id, resolved_customer_id, url FROM stg_web_events "
        "WHERE arrival_date = $d AND event_id LIKE 'ev-%' ORDER BY event_id",
        {"d": DAY},
    )
    assert staged == [
        ("ev-a", known, template["url"]),
        ("ev-b", known, template["url"]),
        ("ev-d", None, template["url"]),
        ("ev-e", known, template["url"]),
        ("ev-f", known, "/new"),
    ]
    hits = {
        (q["rule"], q["line_number"])
        for q in corpus.quarantined("stg_web_events")
        if q["line_number"] >= first
    }
    assert hits == {("unknown_customer", first + 2), ("duplicate_key", first + 6)}
