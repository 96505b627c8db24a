"""``seg-validate <folder>``: check a folder of one's own exports against the landing contract.

The folder is laid out like the landing zone (``<folder>/<source>/<YYYY-MM-DD>.<ext>``,
docs/landing_contract.md). Nothing is loaded into a warehouse: every file goes through the
pipeline's own code on an in-memory DuckDB connection, so what is reported is what a real load
would do with the same file:

* the loader (:func:`seg_pipeline.ingest.loaders.load_file`, ``sql/ingest/``): file name,
  required columns, Parquet types, unreadable lines (``missing_columns``, ``invalid_json``,
  ``line_too_long``, ``json_too_deep``, ...), cut-off files and files of another date;
* the staging SQL (``sql/staging/stg_<source>.sql`` through
  :func:`seg_pipeline.staging.stage.stage_window`, with the default
  :class:`~seg_pipeline.quality.quarantine.QualityPolicy`): every row rule of the quarantine
  (``invalid_timestamp``, ``unknown_customer``, ``duplicate_key``, ...) and the share of a day
  that fails the partition;
* the row expectations of the raw suites (``expectations/raw_<source>.json``: value formats and
  value sets, warnings in the pipeline) and keys that repeat within a file (a later line wins).

Personal values are never printed: the CRM's personal columns are sealed nowhere (the vault is
replaced by a session that discards them) and a finding quotes a value only from a column that
is not personal. Customers are known from the folder's own CRM files; a folder without any
counts every customer as known (``unknown_customer`` is then not checked).
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from seg_pipeline.ingest.loaders import LandingFileError, ensure_raw_tables, load_file
from seg_pipeline.metadata import PERSONAL_COLUMNS
from seg_pipeline.partitions import days_between
from seg_pipeline.quality.quarantine import QualityPolicy
from seg_pipeline.quality.suites import load_suite
from seg_pipeline.resources import Warehouse, read_sql, run_sql, transaction
from seg_pipeline.sources import CRM_CUSTOMERS, SOURCES, SOURCES_BY_NAME, Source
from seg_pipeline.staging.models import MODELS
from seg_pipeline.staging.stage import QuarantineThresholdError, stage_window

# What happens to a finding's rows in the pipeline.
FAILS_LOAD = "fails_load"  # the file (or the day's partition) fails: nothing of it is loaded
QUARANTINED = "quarantined"  # the row goes to the quarantine table, the rest loads
DROPPED = "dropped"  # the row is not kept (a later line of the same key wins), not quarantined
WARNING = "warning"  # the row loads; a raw-suite check of the pipeline warns about it
NOT_READ = "not_read"  # the pipeline never reads this file or folder

_DAY_NAME = re.compile(r"\d{4}-\d{2}-\d{2}")
# The column each staging row rule (sql/staging/stg_<source>.sql) is about; tests check that
# every rule of those files is listed.
_KEY = "key"
_RULE_COLUMNS: dict[str, dict[str, str]] = {
    "crm_customers": {
        "null_key": "customer_id",
        "invalid_timestamp": "updated_at",
        "future_timestamp": "updated_at",
        "too_late": "updated_at",
        "updated_before_signup": "updated_at",
    },
    "orders": {
        "null_key": "order_id, line_number",
        "missing_customer": "customer_id",
        "unknown_customer": "customer_id",
        "invalid_timestamp": "ordered_at",
        "future_timestamp": "ordered_at",
        "too_late": "ordered_at",
        "invalid_quantity": "quantity",
        "non_positive_price": "unit_price",
        "invalid_discount": "discount",
        "unknown_status": "status",
        "duplicate_key": _KEY,
    },
    "web_events": {
        "null_key": "event_id",
        "unknown_customer": "customer_id",
        "invalid_timestamp": "occurred_at",
        "future_timestamp": "occurred_at",
        "too_late": "occurred_at",
        "unknown_event_type": "event_type",
        "duplicate_key": _KEY,
    },
    "reviews": {
        "null_key": "review_id",
        "missing_customer": "customer_id",
        "unknown_customer": "customer_id",
        "invalid_timestamp": "reviewed_at",
        "future_timestamp": "reviewed_at",
        "too_late": "reviewed_at",
        "invalid_rating": "rating",
        "text_too_long": "review_text",
        "duplicate_key": _KEY,
    },
    "campaign_sends": {
        "null_key": "campaign_id, customer_id",
        "unknown_customer": "customer_id",
        "invalid_timestamp": "sent_at",
        "future_timestamp": "sent_at",
        "too_late": "sent_at",
        "unknown_channel": "channel",
        "unknown_control_group": "control_group",
        "duplicate_key": _KEY,
    },
}
# Raw columns derived at load from a personal column (sql/ingest/pseudonymise_personal.sql):
# their checks are reported on the file's column, without its value.
_DERIVED_FROM = {"is_email_valid": "email", "birth_year": "birth_date"}
_ROW_EXPECTATIONS = (
    "expect_column_values_to_match_regex",
    "expect_column_values_to_be_in_set",
    "expect_column_values_to_be_between",
)
_MAX_QUOTED = 80
# How each format delivers a day without rows (loaders.load_file: 0 bytes only for JSON lines).
_EMPTY_DAY = {"csv": "a header line", "jsonl": "an empty file", "parquet": "a file of no rows"}


@dataclass(frozen=True)
class Problem:
    """One finding: where (file relative to the folder, line, column) and what."""

    file: str
    line: int | None
    column: str | None
    rule: str
    effect: str
    message: str

    def text(self) -> str:
        where = self.file + (f":{self.line}" if self.line is not None else "")
        column = f" column {self.column}:" if self.column else ""
        return f"{where}:{column} {self.rule} ({self.effect}): {self.message}"


@dataclass
class Report:
    """What validating a folder found."""

    folder: Path
    files_checked: int
    problems: list[Problem]

    @property
    def clean(self) -> bool:
        return not self.problems


class _DiscardingVault:
    """Stands in for the vault: the CRM load hands it the clear personal values, which are
    dropped (nothing is sealed, nothing is written)."""

    def store_crm_records(self, records: pl.DataFrame, start: date, end: date) -> int:
        return 0


def landing_files(folder: Path) -> tuple[dict[Source, list[tuple[date, Path]]], list[Problem]]:
    """The landing files of ``folder`` per source (by day), and the problems of its layout:
    folders that are no source, file names that are not ``<YYYY-MM-DD>.<ext>``."""
    found: dict[Source, list[tuple[date, Path]]] = {}
    problems: list[Problem] = []
    for entry in sorted(folder.iterdir()):
        source = SOURCES_BY_NAME.get(entry.name)
        if source is None or not entry.is_dir():
            known = ", ".join(s.name for s in SOURCES)
            problems.append(
                Problem(
                    entry.name + ("/" if entry.is_dir() else ""),
                    None,
                    None,
                    "unknown_source",
                    NOT_READ,
                    f"not a source folder of the contract ({known})",
                )
            )
            continue
        days = []
        for path in sorted(entry.iterdir()):
            day = _file_day(path, source)
            if day is None:
                problems.append(
                    Problem(
                        f"{source.name}/{path.name}",
                        None,
                        None,
                        "bad_file_name",
                        NOT_READ,
                        f"a {source.name} file is named <YYYY-MM-DD>.{source.extension} "
                        "(the day it was delivered)",
                    )
                )
            else:
                days.append((day, path))
        found[source] = days
    return found, problems


def _file_day(path: Path, source: Source) -> date | None:
    stem, dot, extension = path.name.partition(".")
    if not path.is_file() or not dot or extension != source.extension:
        return None
    if not _DAY_NAME.fullmatch(stem):
        return None
    try:
        return date.fromisoformat(stem)
    except ValueError:
        return None


def validate_folder(folder: Path, policy: QualityPolicy | None = None) -> Report:
    """Check every landing file of ``folder`` as the pipeline would load and stage it, on an
    in-memory connection; see the module docstring."""
    policy = policy or QualityPolicy()
    files, problems = landing_files(folder)
    problems.extend(_missing_days(files))
    # A throwaway key: the keyed hashes exist only in this connection.
    warehouse = Warehouse(database=":memory:", pseudonymisation_key=secrets.token_hex(32))
    loaded: dict[Source, list[date]] = {}
    with warehouse.connection() as conn:
        for source in SOURCES:
            ensure_raw_tables(conn, source)
            for day, path in files.get(source, []):
                try:
                    with transaction(conn):  # a file that fails leaves nothing behind
                        load_file(
                            conn,
                            source,
                            path,
                            day,
                            policy.max_wrong_day_share,
                            vault=_DiscardingVault(),  # type: ignore[arg-type]
                        )
                    loaded.setdefault(source, []).append(day)
                except LandingFileError as exc:
                    problems.extend(_file_problems(source, path, exc))
                except duckdb.Error as exc:  # a file no reader of the loader can take
                    error = LandingFileError(f"{source.name}: {path}: {exc}", rule="load_error")
                    problems.extend(_file_problems(source, path, error))
        if CRM_CUSTOMERS not in files:
            _assume_known_customers(conn)
        problems.extend(_stage(conn, loaded, policy))
        problems.extend(_quarantined(conn))
        problems.extend(_repeated_keys(conn))
        problems.extend(_raw_checks(conn))
    return Report(folder, sum(len(f) for f in files.values()), _deduplicated(problems))


def _missing_days(files: dict[Source, list[tuple[date, Path]]]) -> Iterator[Problem]:
    """Days between the folder's first and last that a source (with files) has no file for:
    the pipeline loads every source every day, so such a day fails to load."""
    days = [d for found in files.values() for d, _ in found]
    if not days:
        return
    for source, found in files.items():
        if not found:
            continue
        have = {d for d, _ in found}
        for day in days_between(min(days), max(days)):
            if day not in have:
                yield Problem(
                    f"{source.name}/{day.isoformat()}.{source.extension}",
                    None,
                    None,
                    "missing_file",
                    FAILS_LOAD,
                    f"no {source.name} file for {day}, so that day's load fails (a day "
                    f"without rows is delivered as {_EMPTY_DAY[source.file_format]})",
                )


def _file_problems(source: Source, path: Path, exc: LandingFileError) -> Iterator[Problem]:
    name = f"{source.name}/{path.name}"
    for column in exc.columns or (None,):
        yield Problem(name, exc.line, column, exc.rule, FAILS_LOAD, str(exc))


def _assume_known_customers(conn: duckdb.DuckDBPyConnection) -> None:
    run_sql(conn, "validate/known_customers_table")
    for source in SOURCES:
        if source is not CRM_CUSTOMERS and "customer_id" in source.columns:
            run_sql(conn, "validate/assume_known_customers", {"raw_table": source.raw_table})


def _stage(
    conn: duckdb.DuckDBPyConnection, loaded: dict[Source, list[date]], policy: QualityPolicy
) -> Iterator[Problem]:
    """Stage each loaded day, day by day and the CRM first (as the daily job does); a day over
    its quarantine share fails."""
    for day in sorted({d for days in loaded.values() for d in days}):
        for model in MODELS:
            if day not in loaded.get(model.source, []):
                continue
            try:
                stage_window(
                    conn,
                    sql=read_sql(model.sql_name),
                    table=model.table,
                    source=model.quarantine_source,
                    start=day,
                    end=day,
                    policy=policy,
                )
            except QuarantineThresholdError as exc:
                file = f"{model.source.name}/{day.isoformat()}.{model.source.extension}"
                yield Problem(file, None, None, "quarantine_share", FAILS_LOAD, str(exc))


def _quarantined(conn: duckdb.DuckDBPyConnection) -> Iterator[Problem]:
    for source_name, stage, rule, reason, file, line, column in run_sql(
        conn, "validate/quarantined_rows"
    ).fetchall():
        source = SOURCES_BY_NAME[source_name]
        if stage == "staging":
            column = _RULE_COLUMNS.get(source.name, {}).get(rule)
            if column == _KEY:
                column = ", ".join(source.key)
        yield Problem(file, line, column, rule, QUARANTINED, reason or "")


def _repeated_keys(conn: duckdb.DuckDBPyConnection) -> Iterator[Problem]:
    for source in SOURCES:
        rows = run_sql(
            conn, "validate/repeated_keys", {"raw_table": source.raw_table, "key": source.key}
        ).fetchall()
        for file, line, next_line in rows:
            yield Problem(
                file,
                line,
                ", ".join(source.key),
                "repeated_key",
                DROPPED,
                f"the same {' and '.join(source.key)} comes again on line {next_line}, which wins",
            )


def _raw_checks(conn: duckdb.DuckDBPyConnection) -> Iterator[Problem]:
    """The row expectations of the raw suites, row by row (the pipeline checks their share)."""
    for source in SOURCES:
        suite = load_suite(source.raw_table)
        for expectation in suite["expectations"]:
            kwargs = expectation.get("kwargs", {})
            column = kwargs.get("column")
            if expectation["type"] not in _ROW_EXPECTATIONS or column not in source.raw_columns:
                continue
            params = _check_params(expectation["type"], kwargs)
            if params is None:
                continue
            file_column = _DERIVED_FROM.get(column, column)
            sql_params = {"raw_table": source.raw_table, "column_name": column, **params}
            rows = run_sql(conn, "validate/raw_value_check", sql_params).fetchall()
            for file, line, value in rows:
                yield Problem(
                    file,
                    line,
                    file_column,
                    "raw_check",
                    WARNING,
                    _check_message(expectation["type"], kwargs, file_column, column, value),
                )


def _check_params(kind: str, kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """Bound parameters of validate/raw_value_check.sql for one expectation (None: its bounds
    are run-time parameters, which only the pipeline knows)."""
    params: dict[str, Any] = {
        "regex": None,
        "value_set": None,
        "min_value": None,
        "max_value": None,
    }
    if kind == "expect_column_values_to_match_regex":
        params["regex"] = kwargs["regex"]
    elif kind == "expect_column_values_to_be_in_set":
        params["value_set"] = [_as_text(v) for v in kwargs["value_set"]]
    else:
        bounds = (kwargs.get("min_value"), kwargs.get("max_value"))
        if any(isinstance(b, dict) for b in bounds):
            return None
        params["min_value"], params["max_value"] = bounds
    return params


def _as_text(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _check_message(
    kind: str, kwargs: dict[str, Any], file_column: str, column: str, value: str
) -> str:
    if file_column in PERSONAL_COLUMNS:
        what = {
            "is_email_valid": "is not a valid e-mail address",
            "birth_year": "gives a birth year outside "
            f"{kwargs.get('min_value')}..{kwargs.get('max_value')}",
        }.get(column, f"breaks the raw check on {column}")
        return f"{file_column} {what} (value withheld: personal)"
    quoted = value if len(value) <= _MAX_QUOTED else value[:_MAX_QUOTED] + "..."
    if kind == "expect_column_values_to_match_regex":
        return f"{quoted!r} does not have the expected format {kwargs['regex']}"
    if kind == "expect_column_values_to_be_in_set":
        allowed = ", ".join(_as_text(v) for v in kwargs["value_set"])
        return f"{quoted!r} is not one of {allowed}"
    return f"{quoted!r} is outside {kwargs.get('min_value')}..{kwargs.get('max_value')}"


def _deduplicated(problems: list[Problem]) -> list[Problem]:
    """One finding per file, line and column: a quarantine or a failed load wins over a raw
    check or a repeated key of the same place; sorted by file and line."""
    rank = {FAILS_LOAD: 0, QUARANTINED: 1, DROPPED: 2, WARNING: 3, NOT_READ: 0}
    quarantined_lines = {(p.file, p.line) for p in problems if p.effect == QUARANTINED}
    best: dict[tuple[str, int | None, str | None], Problem] = {}
    for problem in problems:
        if problem.effect in (WARNING, DROPPED) and (problem.file, problem.line) in (
            quarantined_lines
        ):
            continue  # the row does not load anyway
        where = (problem.file, problem.line, problem.column)
        if problem.effect == FAILS_LOAD:
            where = (problem.file, problem.line, f"{problem.column}|{problem.rule}")
        if where not in best or rank[problem.effect] < rank[best[where].effect]:
            best[where] = problem
    return sorted(
        best.values(), key=lambda p: (p.file, p.line if p.line is not None else -1, p.rule)
    )


def render(report: Report, output_format: str = "text") -> str:
    """The report as one line per problem (``text``) or one JSON document (``json``)."""
    if output_format == "json":
        return json.dumps(
            {
                "folder": str(report.folder),
                "files_checked": report.files_checked,
                "problems": [asdict(p) for p in report.problems],
            },
            indent=2,
        )
    return "".join(p.text() + "\n" for p in report.problems)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seg-validate",
        description="Check a folder of landing files (<folder>/<source>/<YYYY-MM-DD>.<ext>) "
        "against the landing contract (docs/landing_contract.md) without loading anything. "
        "Exit status: 0 clean, 1 problems found, 2 usage error.",
    )
    parser.add_argument("folder", type=Path, help="folder laid out like the landing zone")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="report format")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        parser.print_usage(sys.stderr)
        print(f"seg-validate: error: not a folder: {args.folder}", file=sys.stderr)
        return 2
    report = validate_folder(args.folder)
    sys.stdout.write(render(report, args.format))
    print(
        f"seg-validate: {len(report.problems)} problem(s) in {report.files_checked} file(s) "
        f"of {args.folder}",
        file=sys.stderr,
    )
    return 0 if report.clean else 1


if __name__ == "__main__":
    sys.exit(main())
