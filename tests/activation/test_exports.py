"""Audience and delivery exports on the month: what leaves the warehouse, how it is written."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from seg_pipeline.activation.exports import (
    ExportFolders,
    export_day,
    neutralise_csv_cells,
    replace_folder,
)
from seg_pipeline.activation.playbook import load_playbook
from seg_pipeline.settings import Settings
from tests.activation.conftest import ACTIVATION_START
from tests.conftest import MONTH_END, vault_for, warehouse_for
from tests.helpers import landing_record

EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[a-z]{2,}")
FORMULA = ("=", "+", "-", "@", "\t", "\r")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_day_has_its_files_and_a_true_manifest(activated: Settings) -> None:
    book = load_playbook(activated.playbook_path)
    with warehouse_for(activated).connection() as conn:
        listed = conn.sql(
            "select * from campaign_exports where as_of_date >= $d", params={"d": ACTIVATION_START}
        ).pl()
        treated = conn.sql(
            "select campaign_id, count(*) as n from audiences where not is_holdout "
            "and as_of_date >= $d group by all",
            params={"d": ACTIVATION_START},
        ).pl()
    days = (MONTH_END - ACTIVATION_START).days + 1
    # per day and campaign: csv + parquet (audience), csv (delivery)
    assert listed.height == days * len(book.campaigns) * 3
    counts = dict(treated.iter_rows())
    for day_folder in sorted((activated.export_dir).iterdir()):
        manifest = json.loads((day_folder / "manifest.json").read_text())
        assert manifest["playbook_version"] == book.version
        for entry in manifest["files"]:
            path = day_folder / entry["file"]
            assert sha256(path) == entry["sha256"]
            frame = pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_csv(path)
            assert frame.height == entry["row_count"] == counts.get(entry["campaign_id"], 0)
    assert listed["sha256"].to_list() == [sha256(Path(f)) for f in listed["file"]]


def test_no_holdout_customer_and_no_contact_field_leaves_for_delivery(
    activated: Settings,
) -> None:
    with warehouse_for(activated).connection() as conn:
        keys = conn.sql(
            "select is_holdout, customer_id, pseudonymize(customer_id) as customer_key, "
            "campaign_id from audiences where as_of_date >= $d",
            params={"d": ACTIVATION_START},
        ).pl()
    held = keys.filter(pl.col("is_holdout"))
    assert held.height > 0
    audience = pl.concat(
        [pl.read_parquet(p) for p in activated.export_dir.glob("*/*.parquet")], how="vertical"
    )
    delivery = pl.concat(
        [pl.read_csv(p, infer_schema=False) for p in activated.delivery_dir.glob("*/*.csv")]
    )
    assert audience.height > 0 and delivery.height > 0
    assert "customer_id" not in audience.columns

    def pairs(frame: pl.DataFrame, key: str) -> set[tuple[str, str]]:
        return set(frame.select("campaign_id", key).iter_rows())

    # a customer held out of one campaign may be treated by another, never by that one
    assert not pairs(audience, "customer_key") & pairs(held, "customer_key")
    assert not pairs(delivery, "customer_id") & pairs(held, "customer_id")
    treated = keys.filter(~pl.col("is_holdout"))
    assert pairs(audience, "customer_key") == pairs(treated, "customer_key")
    # each exported customer carries their top three recommendations of the day
    with warehouse_for(activated).connection() as conn:
        top = conn.sql(
            "select pseudonymize(customer_id) as customer_key, as_of_date + 1 as send_date, "
            "string_agg(product_id, '|' order by rank) as expected from recommendations "
            "where rank <= 3 group by all"
        ).pl()
    joined = audience.join(top, on=["customer_key", "send_date"], how="left")
    assert joined.filter(pl.col("expected").is_not_null()).height > 0.9 * joined.height
    assert (joined["recommended_products"] == joined["expected"]).fill_null(True).all()
    text = "\n".join(p.read_text() for p in activated.export_dir.glob("*/*.csv"))
    assert not EMAIL.search(text)
    # the delivery export carries the field the channel needs, and only that one
    email = delivery.filter(pl.col("channel") == "email")
    push = delivery.filter(pl.col("channel") == "push")
    assert email["email"].drop_nulls().len() > 0.9 * email.height
    assert email["phone"].drop_nulls().len() == 0
    assert push["email"].drop_nulls().len() == push["phone"].drop_nulls().len() == 0


def test_csv_cells_that_could_run_as_formulas_are_neutralised(
    activated: Settings, tmp_path: Path
) -> None:
    # review texts of the generated month as delivered, a few of them turned into the
    # payloads spreadsheet injection uses
    with warehouse_for(activated).connection() as conn:
        texts = conn.sql("select review_text from raw_reviews").pl()["review_text"].drop_nulls()
    payloads = [
        '=HYPERLINK("http://x","{}")',
        "@SUM(1+1)*cmd|'/C calc'!A0 {}",
        "+{}",
        "-2+3 {}",
        "\t={}",
        "\r=1 {}",
    ]
    texts = pl.concat(
        [texts, pl.Series([p.format(t) for p, t in zip(payloads, texts, strict=False)])]
    )
    risky = texts.filter(texts.str.contains(r"^[=+\-@\t\r]"))
    assert risky.len() >= len(payloads)
    frame = pl.DataFrame({"text": texts, "phone": "+34620684415", "amount": "-12.50"})
    path = tmp_path / "cells.csv"
    neutralise_csv_cells(frame).write_csv(path)
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == texts.len()
    assert not any(r["text"].startswith(FORMULA) for r in rows)
    assert {r["text"] for r in rows} >= {"'" + t for t in risky.to_list()}
    assert {r["phone"] for r in rows} == {"+34620684415"}  # plain numbers are left alone
    assert {r["amount"] for r in rows} == {"-12.50"}


def test_a_failed_write_leaves_the_day_as_it_was_and_a_rerun_replaces_it(
    tmp_path: Path,
) -> None:
    target = tmp_path / "2026-01-30"

    def write(files: dict[str, str]):
        def fill(folder: Path) -> None:
            for name, text in files.items():
                (folder / name).write_text(text)

        return fill

    replace_folder(target, write({"a.csv": "old", "b.csv": "old"}))

    def broken(folder: Path) -> None:
        (folder / "a.csv").write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        replace_folder(target, broken)
    assert {p.name: p.read_text() for p in target.iterdir()} == {"a.csv": "old", "b.csv": "old"}
    assert [p.name for p in tmp_path.iterdir()] == ["2026-01-30"]  # no partial folder left
    replace_folder(target, write({"a.csv": "new"}))
    assert {p.name: p.read_text() for p in target.iterdir()} == {"a.csv": "new"}
    assert [p.name for p in tmp_path.iterdir()] == ["2026-01-30"]


def test_re_exporting_a_day_gives_the_same_files(activated: Settings, tmp_path: Path) -> None:
    day = MONTH_END - timedelta(days=3)
    folders = ExportFolders(export_dir=str(tmp_path / "a"), delivery_dir=str(tmp_path / "d"))
    book = load_playbook(activated.playbook_path)
    with warehouse_for(activated).connection() as conn:
        first = export_day(conn, day, book, folders, vault_for(activated))
        again = export_day(conn, day, book, folders, vault_for(activated))
    assert first["sha256"].to_list() == again["sha256"].to_list()
    for kind, root in (("audience", activated.export_dir), ("delivery", activated.delivery_dir)):
        original = root / day.isoformat()
        for row in first.filter(pl.col("kind") == kind).iter_rows(named=True):
            assert row["sha256"] == sha256(original / Path(row["file"]).name)


def test_the_delivery_export_carries_the_landing_files_contacts(activated: Settings) -> None:
    delivered = pl.concat(
        [
            pl.read_csv(p, infer_schema=False).with_columns(pl.lit(p.parent.name).alias("day"))
            for p in sorted(activated.delivery_dir.glob("*/*.csv"))
        ]
    )
    contacts = delivered.filter(pl.col("email").is_not_null() | pl.col("phone").is_not_null())
    assert contacts.height > 20
    with warehouse_for(activated).connection() as conn:
        for row in contacts.head(200).iter_rows(named=True):
            latest = conn.execute(
                "SELECT arrival_date, _record_number FROM stg_crm_customers "
                "WHERE customer_id = $c AND arrival_date <= $d "
                "ORDER BY arrival_date DESC LIMIT 1",
                {"c": row["customer_id"], "d": date.fromisoformat(row["day"])},
            ).fetchone()
            landing = landing_record(activated.landing_dir, latest[0], latest[1])
            assert row["first_name"] == (landing["first_name"].strip() or None)
            if row["channel"] == "email":
                assert row["email"] == landing["email"].strip().lower()
            if row["channel"] == "sms":
                digits = "".join(c for c in landing["phone"] if c.isdigit() or c == "+")
                assert row["phone"].lstrip("'") == digits
    assert ACTIVATION_START <= date.fromisoformat(delivered["day"].min()) <= MONTH_END
