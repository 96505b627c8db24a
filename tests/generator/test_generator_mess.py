"""Planted data-quality problems are present, counted, and absent at messiness 0."""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta

import polars as pl
import pytest

from seg_pipeline.sources import SOURCES
from tests.generator.conftest import START, make_world
from tests.generator.gen_helpers import days, load, read_csv_rows, read_jsonl

END = date(2026, 1, 10)
EMAIL = re.compile(r"[a-z0-9._]+@[a-z0-9.-]+\.[a-z]+")


def test_summary_counts_every_kind(messy_world) -> None:
    m = messy_world.summary.mess
    for kind in ("duplicate", "late", "null", "unknown_customer", "malformed_line"):
        assert m["orders"][kind] > 0, kind
        assert m["web_events"][kind] > 0, kind
    assert m["crm_customers"]["malformed_email"] > 0
    assert m["orders"]["bad_price"] > 0
    assert m["campaign_sends"]["duplicate"] > 0
    assert m["campaign_sends"]["malformed_line"] == 0  # parquet has no lines


def test_malformed_json_lines_match_summary(messy_world) -> None:
    bad = 0
    for day in days(START, END):
        _, b = read_jsonl(messy_world.landing / "web_events" / f"{day}.jsonl")
        bad += b
        assert b >= 1  # at least one per file of >= 1000 rows
    assert bad == messy_world.summary.mess["web_events"]["malformed_line"]


def test_malformed_csv_lines(messy_world) -> None:
    broken = 0
    for day in days(START, END):
        header, rows = read_csv_rows(messy_world.landing / "orders" / f"{day}.csv")
        broken += sum(len(r) != len(header) for r in rows)
    assert broken > 0


def test_duplicates_are_exact_repeats(messy_world) -> None:
    lines = []
    for day in days(START, END):
        text = (messy_world.landing / "orders" / f"{day}.csv").read_text()
        lines += text.splitlines()[1:]
    repeated = len(lines) - len(set(lines))
    planted = messy_world.summary.mess["orders"]["duplicate"]
    assert 0 < repeated <= planted
    assert repeated >= planted - messy_world.summary.mess["orders"]["malformed_line"]


def test_late_rows_belong_to_earlier_days(messy_world) -> None:
    ev = load(messy_world.landing, "web_events", START, END)
    ev = ev.with_columns(pl.col("occurred_at").str.slice(0, 10).str.to_date().alias("d"))
    assert (ev["d"] <= ev["file_day"]).all()
    late = ev.filter(pl.col("d") < pl.col("file_day"))
    assert ((late["file_day"] - late["d"]).dt.total_days().is_between(1, 3)).all()
    planted = messy_world.summary.mess["web_events"]["late"]
    assert 0.9 * planted <= late.height <= 1.1 * planted
    orders = load(messy_world.landing, "orders", START, END).with_columns(
        pl.col("ordered_at")
        .str.to_datetime("%Y-%m-%dT%H:%M:%S%:z")
        .dt.convert_time_zone("UTC")
        .dt.date()
        .alias("d")
    )
    assert (orders["d"] <= orders["file_day"]).all()
    assert (orders["d"] < orders["file_day"]).sum() > 0
    first_day = orders.filter(pl.col("file_day") == START)
    assert (first_day["d"] == START).all()  # nothing can be late on the first day


def test_unknown_customers_and_bad_values(messy_world) -> None:
    crm = load(messy_world.landing, "crm_customers", START, END)
    known = crm["customer_id"].unique().implode()
    orders = load(messy_world.landing, "orders", START, END)
    unknown = orders.filter(~pl.col("customer_id").is_in(known))
    assert unknown.height > 0
    price = orders["unit_price"].cast(pl.Float64, strict=False)
    assert (price <= 0).sum() > 0
    assert orders["channel"].null_count() + (orders["channel"] == "").sum() > 0
    emails = crm["email"].drop_nulls()
    assert (~emails.str.contains(EMAIL.pattern)).sum() > 0
    sends = load(messy_world.landing, "campaign_sends", START, END)
    assert (~sends["customer_id"].is_in(known)).sum() > 0


@pytest.fixture(scope="module")
def clean_small(tmp_path_factory):
    return make_world(
        tmp_path_factory.mktemp("zero"), end_date=END, n_customers=1000, seed=11, messiness=0.0
    )


def test_messiness_zero_is_clean(clean_small) -> None:
    w = clean_small
    assert all(v == 0 for per in w.summary.mess.values() for v in per.values())
    for day in days(START, END):
        for source in SOURCES:
            path = source.path_for(w.landing, day)
            if source.file_format == "jsonl":
                _, bad = read_jsonl(path)
                assert bad == 0
            elif source.file_format == "csv":
                strict = pl.read_csv(path, infer_schema=False)  # raises on ragged lines
                assert strict.columns == list(source.columns)
                assert not strict.is_duplicated().any()
    crm = load(w.landing, "crm_customers", START, END)
    assert crm["email"].str.contains(EMAIL.pattern).all()
    known = crm["customer_id"].unique().implode()
    for source in ("orders", "web_events", "reviews", "campaign_sends"):
        df = load(w.landing, source, START, END)
        assert df["customer_id"].drop_nulls().is_in(known).all(), source
        assert df.select(source_key(source)).is_unique().all(), source
    orders = load(w.landing, "orders", START, END)
    assert (orders["unit_price"].cast(pl.Float64) > 0).all()
    cols = orders.drop("file_day")
    assert cols.select(pl.all().is_null().any() | (pl.all() == "").any()).row(0) == (
        (False,) * cols.width
    )
    ev = load(w.landing, "web_events", START, END)
    ts = ev["occurred_at"].str.slice(0, 10).str.to_date()
    assert (ts == ev["file_day"]).all()


def source_key(name: str) -> list[str]:
    from seg_pipeline.sources import SOURCES_BY_NAME

    return list(SOURCES_BY_NAME[name].key)


def test_small_scale_is_fast(tmp_path) -> None:
    t0 = datetime.now()
    w = make_world(tmp_path, end_date=START + timedelta(days=6), n_customers=1000, seed=1)
    assert datetime.now() - t0 < timedelta(seconds=15)
    assert w.summary.seconds < 15
    assert w.summary.files_written == 35
    assert w.summary.total_rows("orders") > 100
    rows = json.loads(json.dumps({k: sum(v.values()) for k, v in w.summary.rows.items()}))
    assert rows["web_events"] > 10 * rows["orders"]
