"""Every file exists, in the right place, with exactly the contract's columns."""

from __future__ import annotations

import json
import re
from datetime import date

import polars as pl
import pytest

from seg_pipeline.generator import GeneratorConfig, generate
from seg_pipeline.sources import SOURCES
from tests.generator.conftest import START, make_world
from tests.generator.gen_helpers import days, read_csv_rows, read_jsonl


def test_every_file_has_contract_columns(messy_world) -> None:
    w = messy_world
    expected = 0
    for source in SOURCES:
        for day in days(w.config.start_date, w.config.end_date):
            path = source.path_for(w.landing, day)
            assert path.is_file(), path
            expected += 1
            if source.file_format == "csv":
                header, rows = read_csv_rows(path)
                assert tuple(header) == source.columns
                assert rows
            elif source.file_format == "jsonl":
                for line in path.read_text().splitlines()[:200]:
                    try:
                        rec = json.loads(line)
                    except json.JSONDecodeError:
                        continue
                    assert tuple(rec) == source.columns
            else:
                schema = pl.read_parquet_schema(path)
                assert tuple(schema) == source.columns
                assert schema["sent_at"] == pl.Datetime("us", "UTC")
                for col in ("opened", "clicked", "converted"):
                    assert schema[col] == pl.Boolean
    assert len(w.summary.files) == expected
    assert w.summary.files_written == expected
    assert not any(w.truth in p.parents for p in w.summary.files)


def test_formats(clean_world) -> None:
    w = clean_world
    day = date(2026, 1, 5)
    header, rows = read_csv_rows(w.config.landing_dir / "orders" / f"{day}.csv")
    rec = dict(zip(header, rows[0], strict=True))
    assert re.fullmatch(r"O\d{9}", rec["order_id"])
    assert re.fullmatch(r"C\d{8}", rec["customer_id"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", rec["ordered_at"])
    assert re.fullmatch(r"P\d{4}", rec["product_id"])
    assert re.fullmatch(r"-?\d+\.\d\d", rec["unit_price"])
    recs, bad = read_jsonl(w.landing / "web_events" / f"{day}.jsonl")
    assert bad == 0
    assert all(
        re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r["occurred_at"]) for r in recs
    )
    assert {r["event_type"] for r in recs} == {
        "page_view",
        "product_view",
        "search",
        "add_to_cart",
        "checkout",
    }
    header, rows = read_csv_rows(w.landing / "crm_customers" / f"{START}.csv")
    crm = [dict(zip(header, r, strict=True)) for r in rows]
    assert len(crm) == 3000  # the full initial export
    assert {r["gender"] for r in crm} == {"F", "M", "X", ""}
    assert len({r["country"] for r in crm}) == 10
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", r["updated_at"]) for r in crm)
    assert all(r["signup_date"] < str(START) for r in crm)
    assert min(r["signup_date"] for r in crm) < "2023-06-01"  # about three years of history


def test_truth_written(clean_world) -> None:
    truth = pl.read_parquet(clean_world.truth / "customers.parquet")
    assert truth.height == clean_world.summary.n_customers_total > 3000
    assert truth["customer_id"].is_unique().all()
    for col in ("persona", "signup_date", "lambda", "p_dropout", "spend_mean", "dropout_date"):
        assert col in truth.columns
    assert truth["persona"].n_unique() == 6
    params = json.loads((clean_world.truth / "params.json").read_text())
    assert len(params["personas"]) == 6
    assert params["config"]["seed"] == 7


def test_invalid_config(tmp_path) -> None:
    with pytest.raises(ValueError):
        generate(GeneratorConfig(tmp_path, tmp_path / "truth", START, START, n_customers=10))
    with pytest.raises(ValueError):
        generate(GeneratorConfig(tmp_path / "l", tmp_path / "t", START, date(2025, 12, 1)))


def test_web_events_target(tmp_path) -> None:
    w = make_world(tmp_path, n_customers=300, messiness=0.0, web_events_per_day=20_000)
    n = w.summary.rows["web_events"][START]
    assert 18_000 <= n <= 22_000
