"""Load one landing file into its ``raw_<source>`` table with DuckDB's own readers.

Raw tables keep what the source delivered: every source column as text (Parquet columns in
their declared types), plus where each row came from (``_partition_date``, ``_source_file``,
``_record_number``, ``_loaded_at``). Lines that cannot be parsed at all go to the quarantine
(stage ``load``) with file, line, column and error, so nothing delivered is lost.

A source with personal columns (the CRM) never writes them to the warehouse: its parsed rows
stay in a temporary table, ``raw_<source>`` gets their keyed hashes and the non-identifying
values staging needs (``sql/ingest/pseudonymise_personal.sql``), and the clear values go sealed
into the vault (:mod:`seg_pipeline.privacy.vault`) in the same step.

These functions take an open connection and are called inside one transaction per run by the
assets; tests call them directly. The queries are the files of ``sql/ingest/``: a text file is
read into the temporary table ``_lines`` (one row per physical line) and one SELECT per format
(``parse_<format>.sql``) gives the raw rows that are appended to ``raw_<source>``.
"""

from __future__ import annotations

import csv
import json
import mmap
import os
import re
import tempfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from seg_pipeline.privacy.retention import purged_before
from seg_pipeline.privacy.vault import VaultSession
from seg_pipeline.quality.quarantine import (
    clear_quarantine,
    ensure_quarantine_table,
    has_personal_columns,
)
from seg_pipeline.resources import (
    bind_params,
    drop_tables,
    query_frame,
    read_sql,
    run_sql,
    table_columns,
)
from seg_pipeline.sources import RAW_PARTITION_COLUMN, SOURCES_BY_NAME, Source

META_COLUMNS = {
    RAW_PARTITION_COLUMN: "DATE NOT NULL",
    "_source_file": "VARCHAR NOT NULL",
    "_record_number": "BIGINT NOT NULL",
    "_loaded_at": "TIMESTAMP NOT NULL",
}
# Parquet sources keep their declared types; text formats are loaded as VARCHAR.
PARQUET_TYPES: dict[str, dict[str, str]] = {
    "campaign_sends": {
        "campaign_id": "VARCHAR",
        "customer_id": "VARCHAR",
        "sent_at": "TIMESTAMP WITH TIME ZONE",
        "channel": "VARCHAR",
        "opened": "BOOLEAN",
        "clicked": "BOOLEAN",
        "converted": "BOOLEAN",
        "control_group": "BOOLEAN",
    }
}
# Which DuckDB types read from a Parquet file can be cast losslessly to each declared type.
_COMPATIBLE = {
    "VARCHAR": ("VARCHAR",),
    "BOOLEAN": ("BOOLEAN",),
    "TIMESTAMP WITH TIME ZONE": (
        "TIMESTAMP WITH TIME ZONE",
        "TIMESTAMP",
        "TIMESTAMP_NS",
        "TIMESTAMP_MS",
        "TIMESTAMP_S",
    ),
}
# Types of the pseudonyms that replace personal columns in raw tables (text: keyed hashes).
PSEUDONYM_TYPES = {"is_email_valid": "BOOLEAN", "birth_year": "BIGINT"}
MAX_LINE_BYTES = 8 * 1024 * 1024
# A JSON-lines file's keys are read from about this many evenly spread lines (every line of a
# smaller file): asking every line of a 10M-line day costs a second full JSON parse.
KEY_SAMPLE_LINES = 100_000
# JSON nesting deeper than this is quarantined (json_too_deep): a contract row is one flat
# object, and a parser that recurses could run out of stack on 100,000 nested arrays.
MAX_JSON_DEPTH = 64
# How much of a line longer than MAX_LINE_BYTES is kept in the quarantine (its first bytes);
# the file keeps the whole line.
LONG_LINE_HEAD_BYTES = 1000
# How much of such a line is read to find the column that makes it too long.
LONG_LINE_PROBE_BYTES = 64 * 1024
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}:]')
_JSON_KEY = re.compile(r'"((?:[^"\\]|\\.)*)"\s*:')


class LandingFileError(ValueError):
    """A landing file is missing or unusable; the message names the file and the problem.

    ``rule`` names the problem for machines (``seg-validate`` reports it: ``missing_file``,
    ``empty_file``, ``missing_column``, ``duplicate_column``, ``unreadable_parquet``,
    ``wrong_type``, ``incomplete_file``, ``wrong_day``, ``clear_personal_columns``), with the
    ``columns`` and ``line`` it concerns where there are such."""

    def __init__(
        self,
        message: str,
        *,
        rule: str = "file_rejected",
        columns: tuple[str, ...] = (),
        line: int | None = None,
    ) -> None:
        super().__init__(message)
        self.rule = rule
        self.columns = columns
        self.line = line


@dataclass
class LoadResult:
    """What loading one file did."""

    source: str
    partition_date: date
    path: Path
    rows_loaded: int = 0
    rows_rejected: int = 0
    last_line: int = 0  # physical lines of a text file
    extra_columns: list[str] = field(default_factory=list)

    @property
    def source_file(self) -> str:
        """The file relative to the landing folder (``orders/2026-01-16.csv``), as stored."""
        return f"{self.path.parent.name}/{self.path.name}"


def raw_column_types(source: Source) -> dict[str, str]:
    """Column -> DuckDB type of ``raw_<source>``, in file-contract order, then the meta columns."""
    declared = {**PSEUDONYM_TYPES, **PARQUET_TYPES.get(source.name, {})}
    types = {c: declared.get(c, "VARCHAR") for c in source.raw_columns}
    return {**types, **META_COLUMNS}


def ensure_raw_tables(conn: duckdb.DuckDBPyConnection, source: Source) -> None:
    """Create ``raw_<source>`` (its columns from the file contract) and the quarantine table if
    they do not exist yet.

    A raw table of a warehouse made before personal values moved to the vault still has them
    in clear: that fails here, saying how to move on, rather than loading beside them."""
    cols = ", ".join(f'"{c}" {t}' for c, t in raw_column_types(source).items())
    conn.execute(f"CREATE TABLE IF NOT EXISTS {source.raw_table} ({cols})")
    clear = [c for c in table_columns(conn, source.raw_table) if c in source.personal]
    if clear:
        raise LandingFileError(
            f"{source.raw_table} still holds clear personal columns ({', '.join(clear)}) from "
            f"before the vault: drop it (and the schema restricted), then re-materialize its "
            "partitions, which seals those values into the vault and keeps only their keyed "
            "hashes (docs/privacy.md)",
            rule="clear_personal_columns",
            columns=tuple(clear),
        )
    ensure_quarantine_table(conn)


def delete_window(conn: duckdb.DuckDBPyConnection, source: Source, start: date, end: date) -> None:
    """Remove the rows and rejects of partitions [start, end] before they are loaded again."""
    conn.execute(
        f"DELETE FROM {source.raw_table} "
        f"WHERE {RAW_PARTITION_COLUMN} BETWEEN $start_date AND $end_date",
        {"start_date": start, "end_date": end},
    )
    clear_quarantine(conn, source.raw_table, start, end)


def load_file(
    conn: duckdb.DuckDBPyConnection,
    source: Source,
    path: Path,
    partition_date: date,
    max_wrong_day_share: float = 0.5,
    vault: VaultSession | None = None,
) -> LoadResult:
    """Append the rows of one landing file to ``raw_<source>``; see the module docstring.

    A file whose rows mostly happened on another day than its own (more than
    ``max_wrong_day_share`` of at least 20 dated rows) is taken for a misnamed file of another
    date and fails; so do a missing, empty or structurally wrong file, and a text file cut off
    in transfer (no final newline and a last record that cannot be read).

    A source with personal columns needs the attached ``vault``: the day's records there are
    replaced by the file's (sealed), so a re-run neither duplicates them nor makes new keys.
    """
    if source.personal and vault is None:
        raise ValueError(f"{source.name}: loading personal columns needs the attached vault")
    if not path.exists():
        cutoff = purged_before(conn)
        why = (
            f" (retention purged the days before {cutoff}: SEG_RETENTION_DAYS)"
            if cutoff and partition_date < cutoff
            else ""
        )
        raise LandingFileError(
            f"{source.name}: landing file for {partition_date} is missing: {path}{why}",
            rule="missing_file",
        )
    result = LoadResult(source=source.name, partition_date=partition_date, path=path)
    if path.stat().st_size == 0:
        # JSON lines have no header: an empty file is a day without rows. A CSV export always
        # has a header and a Parquet file a footer, so for them 0 bytes means a broken export.
        if source.file_format == "jsonl":
            return result
        raise LandingFileError(
            f"{source.name}: landing file is empty (0 bytes): {path}", rule="empty_file"
        )
    loader = {"csv": _load_csv, "jsonl": _load_jsonl, "parquet": _load_parquet}
    loader[source.file_format](conn, source, path, result)
    if source.file_format != "parquet" and not _ends_with_newline(path):
        _check_last_record(conn, source, result)
    if source.event_time:
        _check_file_day(conn, source, result, max_wrong_day_share)
    if vault is not None and source.personal:
        # Last, after every check: a file that fails leaves the vault as it was too.
        _seal_personal_values(conn, vault, result)
    return result


def _params(result: LoadResult, **extra: object) -> dict[str, object]:
    """The bound parameters every ingest SQL file may use: the file, its partition day and
    its source, plus ``extra``."""
    source = SOURCES_BY_NAME[result.source]
    return {
        "source": source.name,
        "table_name": source.raw_table,
        "raw_table": source.raw_table,
        "as_of_date": result.partition_date,
        "source_file": result.source_file,
        "max_line_bytes": MAX_LINE_BYTES,
        "buffer_bytes": 4 * MAX_LINE_BYTES,
        **extra,
    }


def _run(
    conn: duckdb.DuckDBPyConnection, name: str, result: LoadResult, **extra: object
) -> duckdb.DuckDBPyConnection:
    """Execute ``sql/ingest/<name>.sql`` with the parameters it names."""
    return run_sql(conn, f"ingest/{name}", _params(result, **extra))


def _append_rows(
    conn: duckdb.DuckDBPyConnection, source: Source, name: str, result: LoadResult, **extra: object
) -> None:
    """Append the raw rows that ``sql/ingest/<name>.sql`` selects to ``raw_<source>`` (personal
    columns as pseudonyms: the clear rows wait in temp table ``_pseudonymised`` for the
    vault)."""
    sql = read_sql(f"ingest/{name}")
    params = bind_params(sql, _params(result, **extra))
    if source.personal:
        conn.execute(f"CREATE OR REPLACE TEMP TABLE _delivered AS {sql}", params)
        _run(conn, "pseudonymise_personal", result)
        drop_tables(conn, "_delivered")
        # Identifiers from the file contract, like the raw table's DDL.
        columns = ", ".join(f'"{c}"' for c in (*source.raw_columns, *META_COLUMNS))
        sql, params = f"SELECT {columns} FROM _pseudonymised", {}
    row = conn.execute(f"INSERT INTO {source.raw_table} BY NAME {sql}", params).fetchone()
    result.rows_loaded = int(row[0]) if row else 0


def _seal_personal_values(
    conn: duckdb.DuckDBPyConnection, vault: VaultSession, result: LoadResult
) -> None:
    """Seal the clear values of the rows just loaded into the vault (replacing the day's
    records there) and drop them from the connection."""
    run_sql(conn, "privacy/create_erasure_tables")
    records = query_frame(conn, read_sql("privacy/vault_records"))
    drop_tables(conn, "_pseudonymised")
    vault.store_crm_records(records, result.partition_date, result.partition_date)


def _quarantine_rejects(
    conn: duckdb.DuckDBPyConnection,
    name: str,
    result: LoadResult,
    drop_lines: bool = False,
    **extra: object,
) -> None:
    """Quarantine the unreadable lines that ``sql/ingest/<name>.sql`` lists in _load_rejects
    (and, with ``drop_lines``, remove them from _lines)."""
    _run(conn, name, result, **extra)
    if drop_lines:
        _run(conn, "drop_rejected_lines", result)
    withhold = has_personal_columns(SOURCES_BY_NAME[result.source])
    row = _run(conn, "quarantine_load_rejects", result, withhold_raw_line=withhold).fetchone()
    result.rows_rejected += int(row[0]) if row else 0
    drop_tables(conn, "_load_rejects")


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(-1, 2)
        return handle.read(1) == b"\n"


def _check_last_record(conn: duckdb.DuckDBPyConnection, source: Source, result: LoadResult) -> None:
    """Fail on a file cut off in transfer: no final newline and a last record that cannot be
    read. Loading its first part would hide the loss of the rest; a last record that reads
    well without the newline is accepted (some exporters omit it)."""
    reject = _run(conn, "rejected_line", result, line_number=result.last_line).fetchone()
    if reject:
        raise LandingFileError(
            f"{source.name}: {result.path} is incomplete: it ends without a newline inside its "
            f"last record (line {result.last_line}: {reject[0]}, {reject[1]}), so the file "
            "looks cut off in transfer and none of it is loaded; deliver the whole file again",
            rule="incomplete_file",
            line=result.last_line,
        )


def _check_file_day(
    conn: duckdb.DuckDBPyConnection, source: Source, result: LoadResult, max_share: float
) -> None:
    """Fail on a file that repeats another day's data under this day's name.

    A day's file may legitimately hold only late rows (a day without campaigns still brings
    late sends), so "most rows are from another day" is not enough: the file must also hold at
    least half as many of that day's rows as that day's own file delivered (or that day has no
    file loaded at all).
    """
    other, dated, usual = _run(conn, "file_days", result, event_time=source.event_time).fetchone()
    if dated < 20 or other / dated <= max_share:
        return
    here, own = result.partition_date, usual
    counts = dict(
        _run(
            conn,
            "day_rows_by_file",
            result,
            event_time=source.event_time,
            as_of_date=usual,
            start_date=min(here, own),
            end_date=max(here, own),
        ).fetchall()
    )
    in_file, in_own_file = counts.get(here, 0), counts.get(own, 0)
    if in_own_file and in_file < 0.5 * in_own_file:
        return  # late rows of a busier day, not a copy of it
    raise LandingFileError(
        f"{source.name}: {result.path} is the file for {result.partition_date}, but {other} "
        f"of its {dated} rows ({other / dated:.0%}) happened on other days, mostly {usual}: "
        "it looks like the file of another date",
        rule="wrong_day",
    )


def _check_columns(source: Source, path: Path, found: list[str], result: LoadResult) -> None:
    missing = [c for c in source.columns if c not in found]
    if missing:
        raise LandingFileError(
            f"{source.name}: {path} lacks required column(s) {', '.join(missing)} "
            f"(found: {', '.join(found) or 'none'})",
            rule="missing_column",
            columns=tuple(missing),
            line=1 if source.file_format == "csv" else None,
        )
    result.extra_columns = [c for c in found if c not in source.columns]


def _csv_header(path: Path) -> list[str]:
    with path.open("r", encoding="utf-8-sig", errors="replace", newline="") as handle:
        first = handle.readline()
    return [c.strip() for c in next(csv.reader([first]), [])]


def _read_lines(
    conn: duckdb.DuckDBPyConnection, path: Path, result: LoadResult, json_lines: bool = False
) -> None:
    """Read a text file into temp table ``_lines(line_number, line, is_object)``, one row per
    physical line numbered as in the file (``is_object``: the line is one JSON object, with
    ``json_lines``); lines that are not valid UTF-8 are quarantined."""
    _run(conn, "is_json_object", result)
    _run(conn, "read_lines", result, path=str(path), json_lines=json_lines)
    long_lines = find_long_lines(path, MAX_LINE_BYTES, "jsonl" if json_lines else "csv")
    if long_lines:
        _run(conn, "long_line_rejects", result, long_lines=long_lines)
    _run(conn, "renumber_lines", result)
    result.last_line = int(_run(conn, "last_line", result).fetchone()[0])
    _quarantine_rejects(conn, "encoding_rejects", result)
    drop_tables(conn, "_line_rejects", "_line_rejects_scan")
    if json_lines:
        _quarantine_deep_json(conn, result)


def find_long_lines(path: Path, max_bytes: int, file_format: str) -> list[dict[str, object]]:
    """The lines of ``path`` longer than ``max_bytes`` (without the newline): line number,
    bytes, the column that makes it long where its first bytes show one, and those bytes.

    DuckDB's parallel reader drops a line longer than its buffer without listing it as a
    reject, so the file is checked here too. A line longer than ``max_bytes`` leaves a window of
    ``max_bytes`` without a newline, so the scan looks for the first and last newline of each
    such window of a memory map: a few pages per window are read, not the file (unless it holds
    long lines). A carriage return before the newline counts as part of the line here, so a
    line one byte over the limit is left to the reader (which lists those itself).
    """
    size = path.stat().st_size
    if size <= max_bytes:
        return []
    spans: list[tuple[int, int]] = []  # (first byte, bytes)
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
        last_newline, start = -1, 0
        while start < size:
            end = min(start + max_bytes, size)
            first = view.find(b"\n", start, end)
            if first != -1:
                if first - last_newline - 1 > max_bytes + 1:
                    spans.append((last_newline + 1, first - last_newline - 1))
                last_newline = view.rfind(b"\n", first, end)
            start = end
        if size - last_newline - 1 > max_bytes + 1:
            spans.append((last_newline + 1, size - last_newline - 1))
    if not spans:
        return []
    header = _csv_header(path) if file_format == "csv" else []
    found, line_number, counted = [], 1, 0
    fd = os.open(path, os.O_RDONLY)
    try:
        for first_byte, length in spans:
            while counted < first_byte:  # newlines before the line, read in blocks
                block = os.pread(fd, min(1 << 24, first_byte - counted), counted)
                line_number += block.count(b"\n")
                counted += len(block)
            probe = os.pread(fd, LONG_LINE_PROBE_BYTES, first_byte)
            text = probe.decode("utf-8", errors="replace")
            found.append(
                {
                    "line_number": line_number,
                    "bytes": length,
                    "column_name": _open_column(text, file_format, header),
                    "head": probe[:LONG_LINE_HEAD_BYTES].decode("utf-8", errors="replace")
                    + f" ... ({length} bytes in all; the rest is in the file)",
                }
            )
    finally:
        os.close(fd)
    return found


def _open_column(text: str, file_format: str, header: list[str]) -> str | None:
    """The column still open at the end of ``text``, the first bytes of a long line: the last
    key of a JSON line, the field a CSV line has reached (None when it cannot be told)."""
    if file_format == "csv":
        fields = next(csv.reader([text]), [])
        return header[len(fields) - 1] if 0 < len(fields) <= len(header) else None
    keys = _JSON_KEY.findall(text)
    return keys[-1] if keys else None


def json_nesting_too_deep(line: str, max_depth: int) -> tuple[bool, str | None]:
    """Whether the JSON text ``line`` nests arrays and objects more than ``max_depth`` levels
    deep (brackets inside strings do not count), and the top-level key where it does.
    Stops at the first level too deep, so a hostile line costs no more than that."""
    depth, key, last_string = 0, None, None
    for token in _JSON_TOKEN.finditer(line):
        text = token.group()
        if text in ("[", "{"):
            depth += 1
            if depth > max_depth:
                return True, key
        elif text in ("]", "}"):
            depth -= 1
        elif text == ":":
            if depth == 1 and last_string is not None:
                key = last_string[1:-1]
        else:
            last_string = text
    return False, None


def _quarantine_deep_json(conn: duckdb.DuckDBPyConnection, result: LoadResult) -> None:
    """Quarantine the JSON lines nesting deeper than MAX_JSON_DEPTH (json_too_deep) and take
    them out of _lines; only lines with a bracket or a second brace are measured."""
    deep = []
    cursor = _run(conn, "json_nesting_candidates", result)
    while batch := cursor.fetchmany(1000):
        for line_number, line in batch:
            too_deep, column = json_nesting_too_deep(line, MAX_JSON_DEPTH)
            if too_deep:
                deep.append({"line_number": line_number, "column_name": column})
    if deep:
        _quarantine_rejects(
            conn,
            "json_depth_rejects",
            result,
            drop_lines=True,
            deep_lines=deep,
            max_json_depth=MAX_JSON_DEPTH,
        )


def _load_csv(
    conn: duckdb.DuckDBPyConnection, source: Source, path: Path, result: LoadResult
) -> None:
    header = _csv_header(path)
    _check_columns(source, path, header, result)
    if len(set(header)) != len(header):
        duplicated = tuple(sorted({c for c in header if header.count(c) > 1}))
        raise LandingFileError(
            f"{source.name}: {path} has duplicate column names: {header}",
            rule="duplicate_column",
            columns=duplicated,
            line=1,
        )
    _read_lines(conn, path, result)
    _quarantine_rejects(conn, "csv_unterminated_quotes", result)
    with tempfile.TemporaryDirectory(prefix="seg-load-") as tmp:
        numbered = Path(tmp) / "lines.csv"
        _run(conn, "csv_numbered_lines", result, numbered_path=str(numbered))
        file_columns = {"_record_number": "BIGINT", **{c: "VARCHAR" for c in header}}
        _append_rows(
            conn,
            source,
            "parse_csv",
            result,
            path=str(numbered),
            file_columns=file_columns,
            columns=list(source.columns),
        )
    _quarantine_rejects(conn, "csv_rejects", result)
    drop_tables(conn, "_lines", "_rejects", "_rejects_scan")


def _load_jsonl(
    conn: duckdb.DuckDBPyConnection, source: Source, path: Path, result: LoadResult
) -> None:
    _read_lines(conn, path, result, json_lines=True)
    found = _json_keys(conn, source, result)
    order = {c: i for i, c in enumerate(source.columns)}
    found.sort(key=lambda c: (order.get(c, len(order)), c))
    _check_columns(source, path, found, result)
    structure = json.dumps({c: "VARCHAR" for c in source.columns})
    _append_rows(conn, source, "parse_jsonl", result, structure=structure)
    _quarantine_rejects(conn, "json_rejects", result)
    drop_tables(conn, "_lines")


def _json_keys(conn: duckdb.DuckDBPyConnection, source: Source, result: LoadResult) -> list[str]:
    """The keys of the file's JSON objects: those of every ``step``-th line (about
    :data:`KEY_SAMPLE_LINES` lines), and, when that sample lacks a contract column, of every
    line, so a missing column is only ever reported after every line was read. A key used by
    fewer lines than one in ``step`` may be absent from the extra columns reported."""
    step = max(1, result.last_line // KEY_SAMPLE_LINES)
    found = [r[0] for r in _run(conn, "json_keys", result, every=step).fetchall()]
    if step > 1 and not set(source.columns) <= set(found):
        found = [r[0] for r in _run(conn, "json_keys", result, every=1).fetchall()]
    return found


def _load_parquet(
    conn: duckdb.DuckDBPyConnection, source: Source, path: Path, result: LoadResult
) -> None:
    try:
        described = _run(conn, "describe_parquet", result, path=str(path)).fetchall()
    except duckdb.Error as exc:
        raise LandingFileError(
            f"{source.name}: {path} is not a readable Parquet file: {exc}",
            rule="unreadable_parquet",
        ) from exc
    found_types = {r[0]: r[1] for r in described}
    _check_columns(source, path, list(found_types), result)
    declared = PARQUET_TYPES[source.name]
    for column, expected in declared.items():
        if found_types[column] not in _COMPATIBLE[expected]:
            raise LandingFileError(
                f"{source.name}: {path} column {column} has type {found_types[column]}, "
                f"expected {expected}",
                rule="wrong_type",
                columns=(column,),
            )
    _append_rows(
        conn, source, "parse_parquet", result, path=str(path), columns=list(source.columns)
    )
