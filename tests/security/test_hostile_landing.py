"""Hostile landing files: an oversized field, deeply nested JSON, text that looks like a
formula or a script.

Each test takes a generator-made day of the loaded month (the bad-input corpus) and edits one
field before loading it. Oversized and too-deep lines are quarantined with their file, line
and column while the rest of the file loads, in a child process whose peak memory is measured
(a behaviour bound, not a speed target). Formula- and script-looking text goes through the
real loaders, staging and export files and comes out neutralised in CSV, verbatim in Parquet.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from seg_pipeline.activation.exports import ExportFolders, export_day
from seg_pipeline.activation.playbook import load_playbook
from seg_pipeline.ingest.loaders import MAX_JSON_DEPTH, MAX_LINE_BYTES, json_nesting_too_deep
from seg_pipeline.resources import query_frame, read_sql
from seg_pipeline.settings import REPO_ROOT
from seg_pipeline.sources import CRM_CUSTOMERS, WEB_EVENTS, Source
from tests.conftest import warehouse_for
from tests.quality.minihouse import vault_beside
from tests.quality.test_bad_inputs import DAY, Corpus

# A cell a spreadsheet would evaluate, as the export test sees it after parsing the CSV.
FORMULA = re.compile("[\\x00-\\x20]*[=+\\-@\uff1d\uff0b\uff0d\uff20]|[\\x00\\t\\r\\n]")
PLAIN = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")

# Generous: the load of a whole generated day takes about 0.3 GB; a 50 MB line must not cost
# gigabytes (a reader that buffers it whole, a parser that recurses).
MEMORY_BOUND = 1.5e9
HUGE = 50_000_000


def _load_in_child(corpus: Corpus, source: Source) -> dict:
    done = subprocess.run(
        [
            sys.executable, "-m", "tests.security.load_child",
            str(corpus.settings.warehouse_path), source.name, str(corpus.path(source)), str(DAY),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _raw_rows(corpus: Corpus, source: Source) -> int:
    sql = f"SELECT count(*) FROM {source.raw_table} WHERE _partition_date = $d"
    return corpus.query(sql, {"d": DAY})[0][0]


def _web_event_lines(corpus: Corpus) -> tuple[list[str], int]:
    """The day's web-event lines and the index of the first one that is a valid event."""
    lines = corpus.lines(WEB_EVENTS)
    for index, line in enumerate(lines):
        try:
            if isinstance(json.loads(line), dict):
                return lines, index
        except ValueError:
            continue
    raise AssertionError("no valid web event in the day's file")


def _only_new_quarantine(corpus: Corpus, table: str, rule: str) -> dict:
    hits = [q for q in corpus.quarantined(table) if q["rule"] == rule]
    assert len(hits) == 1, hits
    return hits[0]


@pytest.mark.parametrize(
    "edit",
    ["url", "nested_arrays", "nested_objects"],
)
def test_oversized_or_too_deep_json_line_is_quarantined_in_bounded_memory(
    corpus: Corpus, edit: str
) -> None:
    lines, index = _web_event_lines(corpus)
    before = _raw_rows(corpus, WEB_EVENTS)
    event = json.loads(lines[index])
    if edit == "url":  # a 50 MB field: longer than the line limit
        event["url"] = "/" + "a" * HUGE
        text = json.dumps(event)
    elif edit == "nested_arrays":  # 100,000 nested arrays as the url
        text = json.dumps(event).replace(json.dumps(event["url"]), "[" * 100_000 + "]" * 100_000, 1)
    else:  # 100,000 nested objects under a key the contract does not know
        text = json.dumps(event)[:-1] + ', "extra": ' + '{"a": ' * 100_000 + "1" + "}" * 100_000
        text += "}"
    lines[index] = text
    corpus.write(WEB_EVENTS, "\n".join(lines) + "\n")

    measured = _load_in_child(corpus, WEB_EVENTS)

    print(f"peak RSS of the hostile web-event load ({edit}): {measured['peak_rss_bytes']:,} B")
    assert measured["peak_rss_bytes"] < MEMORY_BOUND
    rule, column = {
        "url": ("line_too_long", "url"),
        "nested_arrays": ("json_too_deep", "url"),
        "nested_objects": ("json_too_deep", "extra"),
    }[edit]
    hit = _only_new_quarantine(corpus, "raw_web_events", rule)
    assert hit["source_file"] == f"web_events/{DAY}.jsonl"
    assert hit["line_number"] == index + 1
    column_name = corpus.query(
        "SELECT column_name FROM quarantine WHERE rule = $r AND arrival_date = $d",
        {"r": rule, "d": DAY},
    )
    assert column_name == [(column,)]
    if rule == "line_too_long":
        assert f"more than the limit of {MAX_LINE_BYTES}, in column url" in hit["reason"]
        assert len(hit["raw_record"]) < 2000  # the first bytes, not 50 MB
    else:
        assert f"more than {MAX_JSON_DEPTH} levels deep, in column {column}" in hit["reason"]
    # every other line loads, and keeps its own line number
    assert _raw_rows(corpus, WEB_EVENTS) == before - 1
    numbers = corpus.query(
        "SELECT _record_number, event_id FROM raw_web_events WHERE _partition_date = $d",
        {"d": DAY},
    )
    by_id = {event_id: number for number, event_id in numbers}
    assert event["event_id"] not in by_id
    after = json.loads(lines[index + 1])
    assert by_id[after["event_id"]] == index + 2


def test_oversized_csv_field_is_quarantined_in_bounded_memory(corpus: Corpus) -> None:
    lines = corpus.lines(CRM_CUSTOMERS)
    header = next(csv.reader([lines[0]]))
    before = _raw_rows(corpus, CRM_CUSTOMERS)
    fields = next(csv.reader([lines[1]]))
    fields[header.index("first_name")] = "x" * HUGE
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(fields)
    lines[1] = out.getvalue()
    corpus.write(CRM_CUSTOMERS, "\n".join(lines) + "\n")

    measured = _load_in_child(corpus, CRM_CUSTOMERS)

    print(f"peak RSS of the hostile CRM load: {measured['peak_rss_bytes']:,} B")
    assert measured["peak_rss_bytes"] < MEMORY_BOUND
    hit = _only_new_quarantine(corpus, "raw_crm_customers", "line_too_long")
    assert (hit["source_file"], hit["line_number"]) == (f"crm_customers/{DAY}.csv", 2)
    assert "in column first_name" in hit["reason"]
    assert hit["raw_record"].startswith("(withheld: personal data")
    assert _raw_rows(corpus, CRM_CUSTOMERS) == before - 1


@pytest.mark.parametrize(
    ("depth", "expected"),
    [
        (MAX_JSON_DEPTH, (False, None)),
        (MAX_JSON_DEPTH + 1, (True, "url")),
    ],
)
def test_json_depth_counts_levels_not_brackets_in_strings(depth: int, expected: tuple) -> None:
    nested = "[" * (depth - 1) + "]" * (depth - 1)
    line = '{"note": "' + "[" * 500 + '", "url": ' + nested + "}"
    assert json_nesting_too_deep(line, MAX_JSON_DEPTH) == expected


# -- formula- and script-looking text reaching the exports ---------------------------------

# landing text -> the exact bytes of its CSV cell in the export
PAYLOADS = {
    "=cmd|' /C calc'!A0": b"'=cmd|' /C calc'!A0",
    '=HYPERLINK("http://x.invalid","y")': b'"\'=HYPERLINK(""http://x.invalid"",""y"")"',
    "+SUM(1;2)": b"'+SUM(1;2)",
    "-2+3": b"'-2+3",
    "@SUM(A1:A2)": b"'@SUM(A1:A2)",
    " =1+1": b"' =1+1",
    "\uff1dSUM(1)": "'\uff1dSUM(1)".encode(),
    "\t=1": b"'\t=1",
    "<script>alert(1)</script>": b"<script>alert(1)</script>",
}


def _cells(path, column: str) -> list[bytes]:
    """The raw bytes of ``column``'s cells in a CSV file (quotes as written)."""
    lines = path.read_bytes().split(b"\n")
    names = lines[0].split(b",")
    cells = []
    for line in lines[1:]:
        if line:
            cells.append(_split_csv_bytes(line)[names.index(column.encode())])
    return cells


def _split_csv_bytes(line: bytes) -> list[bytes]:
    """A CSV line split into its cells as written (quoted cells keep their quotes)."""
    cells, cell, quoted = [], b"", False
    for byte in (line[i : i + 1] for i in range(len(line))):
        if byte == b'"':
            quoted = not quoted
        if byte == b"," and not quoted:
            cells.append(cell)
            cell = b""
        else:
            cell += byte
    return [*cells, cell]


def test_formula_and_script_text_from_landing_files_reaches_exports_neutralised(
    corpus: Corpus, tmp_path: Path
) -> None:
    """First names of customers in the day's delivery export, edited in the day's CRM file and
    loaded (sealed into the vault) and staged; product ids of the day's recommendations for
    customers of the audience export; then the day's exports written."""
    book = load_playbook(REPO_ROOT / "playbook.yaml")
    warehouse = warehouse_for(corpus.settings)
    with warehouse.connection() as conn:
        delivered = query_frame(
            conn, read_sql("activation/delivery_customers"), {"as_of_date": DAY}
        )
    customers = delivered["customer_id"].unique(maintain_order=True).to_list()[: len(PAYLOADS)]
    assert len(customers) == len(PAYLOADS), "the day's delivery export is too small"
    named = dict(zip(customers, PAYLOADS, strict=True))

    # the CRM file of the day: a new version of each of these customers, named a payload
    lines = corpus.lines(CRM_CUSTOMERS)
    # their latest versions as the CRM delivered them: the warehouse keeps hashes, the vault
    # the clear values
    raw = {
        r[0]: r
        for r in corpus.query(
            "SELECT * FROM raw_crm_customers WHERE list_contains($ids, customer_id) "
            "QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY updated_at DESC) = 1",
            {"ids": customers},
        )
    }
    raw_columns = [r[0] for r in corpus.query("DESCRIBE raw_crm_customers")]
    latest = []
    with warehouse.connection() as conn, vault_beside(warehouse).attached(conn) as vault:
        for customer in customers:
            clear = (
                vault.read_customer(customer)
                .sort("arrival_date", "record_number")
                .row(-1, named=True)
            )
            delivered = dict(zip(raw_columns, raw[customer], strict=True))
            latest.append([clear.get(c, delivered.get(c)) for c in CRM_CUSTOMERS.columns])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    column = CRM_CUSTOMERS.columns.index("first_name")
    for row in latest:
        edited = list(row)
        edited[column] = named[row[0]]
        edited[CRM_CUSTOMERS.columns.index("updated_at")] = f"{DAY} 23:59:00"
        writer.writerow(edited)
    corpus.write(CRM_CUSTOMERS, "\n".join(lines) + "\n" + out.getvalue())
    corpus.stage(CRM_CUSTOMERS)

    # the audience export's landing-derived text: product ids, here the day's top pick
    with warehouse.connection() as conn:
        audience = query_frame(conn, read_sql("activation/export_rows"), {"as_of_date": DAY})
        audience_ids = conn.execute(
            "SELECT DISTINCT customer_id FROM audiences WHERE as_of_date = $d AND NOT is_holdout "
            "ORDER BY customer_id LIMIT $n",
            {"d": DAY, "n": len(PAYLOADS)},
        ).fetchall()
        picked = {c: p for (c,), p in zip(audience_ids, PAYLOADS, strict=True)}
        conn.execute(
            "DELETE FROM recommendations WHERE as_of_date = $d "
            "AND list_contains($ids, customer_id)",
            {"d": DAY, "ids": list(picked)},
        )
        for customer, product in picked.items():
            conn.execute(
                "INSERT INTO recommendations BY NAME SELECT $d AS as_of_date, $c AS customer_id, "
                "1::INTEGER AS rank, $p AS product_id",
                {"d": DAY, "c": customer, "p": product},
            )
        folders = ExportFolders(export_dir=str(tmp_path / "a"), delivery_dir=str(tmp_path / "d"))
        export_day(conn, DAY, book, folders, vault_beside(warehouse))
    assert audience.height > 0

    delivery_csv = sorted((tmp_path / "d" / str(DAY)).glob("*.csv"))
    names = [c for path in delivery_csv for c in _cells(path, "first_name")]
    for text, cell in PAYLOADS.items():
        # staging trims the spaces around a name; the sign after them is still neutralised
        assert (b"'=1+1" if text == " =1+1" else cell) in names, text
    audience_csv = sorted((tmp_path / "a" / str(DAY)).glob("*.csv"))
    products = {c for path in audience_csv for c in _cells(path, "recommended_products")}
    assert set(PAYLOADS.values()) <= products
    parquet = pl.concat([pl.read_parquet(p) for p in (tmp_path / "a" / str(DAY)).glob("*.parquet")])
    assert set(PAYLOADS) <= set(parquet["recommended_products"].to_list())  # verbatim
    # nothing else of the files starts a cell with a formula sign
    for path in delivery_csv + audience_csv:
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.reader(handle):
                assert not any(FORMULA.match(c) and not PLAIN.fullmatch(c) for c in row), row
