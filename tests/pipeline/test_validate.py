"""seg-validate: a folder of landing files checked against the contract without a warehouse.

Generated folders (clean and with the generator's planted mess) and damaged copies of the
clean one; the messy folder's findings are compared with what a real run of the raw and staging
assets quarantines for the same files.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from seg_pipeline.definitions import build_definitions
from seg_pipeline.generator import GeneratorConfig, generate
from seg_pipeline.ingest.loaders import MAX_JSON_DEPTH, MAX_LINE_BYTES
from seg_pipeline.ingest.validate import (
    DROPPED,
    FAILS_LOAD,
    NOT_READ,
    QUARANTINED,
    WARNING,
    Problem,
    main,
    validate_folder,
)
from seg_pipeline.settings import SQL_DIR, Settings
from seg_pipeline.sources import SOURCES
from tests.conftest import run_range, set_test_keys, warehouse_for

START, END = date(2026, 1, 1), date(2026, 1, 3)
DAY = "2026-01-02"


def _generate(root: Path, messiness: float) -> Path:
    generate(
        GeneratorConfig(
            landing_dir=root / "landing",
            truth_dir=root / "truth",
            start_date=START,
            end_date=END,
            n_customers=300,
            seed=5,
            messiness=messiness,
        )
    )
    return root / "landing"


@pytest.fixture(scope="module")
def clean_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _generate(tmp_path_factory.mktemp("validate_clean"), 0.0)


@pytest.fixture
def folder(clean_folder: Path, tmp_path: Path) -> Path:
    """A copy of the clean folder this test may damage."""
    return shutil.copytree(clean_folder, tmp_path / "landing")


def _only(problems: list[Problem], **where: object) -> Problem:
    found = [p for p in problems if all(getattr(p, k) == v for k, v in where.items())]
    assert len(found) == 1, (where, problems)
    return found[0]


def _edit_lines(path: Path, edit) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    edit(lines)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return lines


def _csv_fields(line: str) -> list[str]:
    return next(csv.reader([line]))


def _csv_line(fields: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(fields)
    return out.getvalue()


def test_clean_generated_folder_validates_clean(
    clean_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(clean_folder)]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert "0 problem(s) in 15 file(s)" in err
    assert main([str(clean_folder), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["problems"] == [] and report["files_checked"] == 15


def test_crlf_line_ends_read_as_well(folder: Path) -> None:
    for path in [folder / "orders" / f"{DAY}.csv", folder / "web_events" / f"{DAY}.jsonl"]:
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    assert validate_folder(folder).problems == []


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "nowhere")]) == 2
    assert "not a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path), "--format", "xml"])
    assert exit_info.value.code == 2


def test_dropped_csv_column_is_reported_on_the_header(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = folder / "orders" / f"{DAY}.csv"

    def drop_unit_price(lines: list[str]) -> None:
        index = _csv_fields(lines[0]).index("unit_price")
        for i, line in enumerate(lines):
            fields = _csv_fields(line)
            del fields[index]
            lines[i] = _csv_line(fields)

    _edit_lines(path, drop_unit_price)
    assert main([str(folder)]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"orders/{DAY}.csv:1: column unit_price: missing_column (fails_load): ")
    assert len(out.splitlines()) == 1


def test_missing_json_key_is_reported_without_a_line(folder: Path) -> None:
    path = folder / "web_events" / f"{DAY}.jsonl"

    def drop_device(lines: list[str]) -> None:
        for i, line in enumerate(lines):
            event = json.loads(line)
            del event["device"]
            lines[i] = json.dumps(event)

    _edit_lines(path, drop_device)
    problems = validate_folder(folder).problems
    hit = _only(problems, rule="missing_column")
    assert (hit.file, hit.line, hit.column, hit.effect) == (
        f"web_events/{DAY}.jsonl",
        None,
        "device",
        FAILS_LOAD,
    )
    assert len(problems) == 1


def test_broken_json_line_non_date_and_duplicate_key(folder: Path) -> None:
    def break_line_5(lines: list[str]) -> None:
        lines[4] = lines[4][: len(lines[4]) // 2]

    _edit_lines(folder / "web_events" / f"{DAY}.jsonl", break_line_5)

    def bad_date_and_duplicates(lines: list[str]) -> None:
        header = _csv_fields(lines[0])
        fields = _csv_fields(lines[2])
        fields[header.index("ordered_at")] = "yesterday"
        lines[2] = _csv_line(fields)
        conflicting = _csv_fields(lines[3])
        conflicting[header.index("quantity")] = str(int(conflicting[header.index("quantity")]) + 1)
        lines.append(_csv_line(conflicting))  # the key of line 4 again, with another quantity
        lines.append(lines[4])  # line 5 again, exactly

    lines = _edit_lines(folder / "orders" / f"{DAY}.csv", bad_date_and_duplicates)
    problems = validate_folder(folder).problems

    broken = _only(problems, rule="invalid_json")
    assert (broken.file, broken.line, broken.column, broken.effect) == (
        f"web_events/{DAY}.jsonl",
        5,
        None,
        QUARANTINED,
    )
    bad_date = _only(problems, rule="invalid_timestamp")
    assert (bad_date.file, bad_date.line, bad_date.column) == (f"orders/{DAY}.csv", 3, "ordered_at")
    assert bad_date.message == "ordered_at is not a timestamp: yesterday"
    duplicate = _only(problems, rule="duplicate_key")
    assert (duplicate.file, duplicate.line, duplicate.column, duplicate.effect) == (
        f"orders/{DAY}.csv",
        4,
        "order_id, line_number",
        QUARANTINED,
    )
    repeated = _only(problems, rule="repeated_key")
    assert (repeated.line, repeated.effect) == (5, DROPPED)
    assert f"again on line {len(lines)}" in repeated.message
    assert len(problems) == 4


def test_unknown_folder_and_file_name_that_is_not_a_date(folder: Path) -> None:
    (folder / "returns").mkdir()
    (folder / "returns" / f"{DAY}.csv").write_text("return_id\nR1\n")
    (folder / "orders" / f"{DAY}.csv").rename(folder / "orders" / "latest.csv")
    (folder / "reviews" / f"{DAY}.json").write_text("{}\n")
    problems = validate_folder(folder).problems
    assert _only(problems, rule="unknown_source").file == "returns/"
    assert {(p.file, p.effect) for p in problems if p.rule == "bad_file_name"} == {
        ("orders/latest.csv", NOT_READ),
        (f"reviews/{DAY}.json", NOT_READ),
    }
    # the day's orders file is now missing: the load of that day would fail
    gap = _only(problems, rule="missing_file")
    assert (gap.file, gap.effect) == (f"orders/{DAY}.csv", FAILS_LOAD)
    assert len(problems) == 4


def test_oversized_and_too_deep_json_lines(folder: Path) -> None:
    def hostile(lines: list[str]) -> None:
        event = json.loads(lines[3])
        event["url"] = "/" + "a" * (MAX_LINE_BYTES + 10)
        lines[3] = json.dumps(event)
        event = json.loads(lines[6])
        lines[6] = json.dumps(event).replace(
            json.dumps(event["url"]), "[" * (MAX_JSON_DEPTH + 5) + "]" * (MAX_JSON_DEPTH + 5)
        )

    _edit_lines(folder / "web_events" / f"{DAY}.jsonl", hostile)
    problems = validate_folder(folder).problems
    long_line = _only(problems, rule="line_too_long")
    assert (long_line.file, long_line.line, long_line.column) == (
        f"web_events/{DAY}.jsonl",
        4,
        "url",
    )
    assert len(long_line.message) < 200  # the reason, not the line
    deep = _only(problems, rule="json_too_deep")
    assert (deep.line, deep.column) == (7, "url")
    assert len(problems) == 2


def test_without_crm_files_every_customer_counts_as_known(folder: Path) -> None:
    shutil.rmtree(folder / "crm_customers")
    assert validate_folder(folder).problems == []


def test_wrong_parquet_type_and_a_value_outside_the_raw_suite(folder: Path) -> None:
    path = folder / "campaign_sends" / f"{DAY}.parquet"
    sends = pl.read_parquet(path)
    sends.with_columns(pl.col("opened").cast(pl.Int8)).write_parquet(path)

    def fax_channel(lines: list[str]) -> None:
        header = _csv_fields(lines[0])
        fields = _csv_fields(lines[1])
        fields[header.index("channel")] = "fax"
        lines[1] = _csv_line(fields)

    _edit_lines(folder / "orders" / f"{DAY}.csv", fax_channel)
    problems = validate_folder(folder).problems
    wrong = _only(problems, rule="wrong_type")
    assert (wrong.file, wrong.line, wrong.column, wrong.effect) == (
        f"campaign_sends/{DAY}.parquet",
        None,
        "opened",
        FAILS_LOAD,
    )
    check = _only(problems, rule="raw_check")
    assert (check.file, check.line, check.column, check.effect) == (
        f"orders/{DAY}.csv",
        2,
        "channel",
        WARNING,
    )
    assert check.message.startswith("'fax' is not one of web, app, store, marketplace")
    assert len(problems) == 2


def test_personal_values_are_never_printed(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = folder / "crm_customers" / f"{START}.csv"
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))

    def damage(lines: list[str]) -> None:
        lines[2] = lines[2].replace("@", " ", 1)  # an invalid e-mail address
        lines[3] = lines[3].rsplit(",", 3)[0]  # too few fields
        lines[4] = lines[4].replace(",", ',"', 1)  # an unterminated quote
        fields = _csv_fields(lines[5])
        fields[-1] = "sometime"  # updated_at
        lines[5] = _csv_line(fields)

    _edit_lines(path, damage)
    assert main([str(folder)]) == 1
    assert main([str(folder), "--format", "json"]) == 1
    out = capsys.readouterr().out
    report = json.loads(out[out.index("{") :])
    assert {
        (p["line"], p["rule"], frozenset((p["column"] or "").split(", ")) - {""})
        for p in report["problems"]
        if p["file"] == f"crm_customers/{START}.csv"
    } == {
        (3, "raw_check", frozenset({"email"})),
        (4, "missing_columns", frozenset({"signup_date", "marketing_consent", "updated_at"})),
        (5, "unterminated_quote", frozenset()),
        (6, "invalid_timestamp", frozenset({"updated_at"})),
    }
    personal = set()
    for row in rows:
        personal |= {row["email"], row["email"].replace("@", " ", 1), row["phone"]}
        personal.add(f"{row['first_name']} {row['last_name']}")
    assert not [value for value in personal if value and value in out]
    # the customers whose rows did not load are unknown to the other sources' files
    assert {p["rule"] for p in report["problems"] if not p["file"].startswith("crm")} <= {
        "unknown_customer"
    }


def test_every_staging_rule_has_its_column() -> None:
    from seg_pipeline.ingest.validate import _RULE_COLUMNS

    for source in SOURCES:
        sql = (SQL_DIR / "staging" / f"stg_{source.name}.sql").read_text()
        rules = set(re.findall(r"then '([a-z_]+)'", sql)) | set(
            re.findall(r"when '([a-z_]+)' then", sql)
        )
        assert rules == set(_RULE_COLUMNS[source.name]), source.name


@pytest.fixture(scope="module")
def messy_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[tuple]]:
    """A generated folder with the generator's mess, and what a real run of the raw and staging
    assets quarantined for it: (file, line, rule)."""
    set_test_keys()
    root = tmp_path_factory.mktemp("validate_messy")
    settings = Settings.from_env(
        {
            "SEG_DATA_DIR": str(root),
            "SEG_WAREHOUSE": str(root / "warehouse.duckdb"),
            "SEG_PARTITIONS_START": START.isoformat(),
        }
    )
    _generate(root, 0.05)
    defs = build_definitions(settings)
    assets = [name for s in SOURCES for name in (s.raw_table, s.staging_table)]
    assert run_range(defs, START, END, assets=assets).success
    rows = (
        warehouse_for(settings)
        .query("SELECT source_file, line_number, rule FROM quarantine")
        .rows()
    )
    return settings.landing_dir, set(rows)


def test_generator_mess_is_reported_as_the_load_quarantines_it(
    messy_run: tuple[Path, set[tuple]],
) -> None:
    landing, quarantined = messy_run
    problems = validate_folder(landing).problems
    assert quarantined  # the generator planted problems the run quarantined
    assert {(p.file, p.line, p.rule) for p in problems if p.effect == QUARANTINED} == quarantined
    assert not [p for p in problems if p.effect in (FAILS_LOAD, NOT_READ)]
    # the planted exact repeats: dropped by staging, reported on the earlier line
    repeated = [p for p in problems if p.rule == "repeated_key"]
    assert {p.effect for p in repeated} == {DROPPED}
    text_files = [p for p in repeated if not p.file.endswith(".parquet")]
    assert text_files
    for problem in text_files:
        lines = (landing / problem.file).read_text(encoding="utf-8").splitlines()
        later = int(re.search(r"again on line (\d+)", problem.message).group(1))
        assert lines[problem.line - 1] == lines[later - 1], problem
