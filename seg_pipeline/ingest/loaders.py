"""Load one landing file into its ``raw_<source>`` table with DuckDB's own readers.

Raw tables keep what the source delivered: every source column as text (Parquet columns in
their declared types), plus where each row came from (``_partition_date``, ``_source_file``,
``_record_number``, ``_loaded_at``). Lines that cannot be parsed at all go to the quarantine
(stage ``load``) with file, line, column and error, so nothing delivered is lost.

These functions take an open connection and are called inside one transaction per run by the
assets; tests call them directly.
"""

from __future__ import annotations

import csv
import tempfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from seg_pipeline.quality.quarantine import (
    QUARANTINE_TABLE,
    clear_quarantine,
    ensure_quarantine_table,
    has_personal_columns,
)
from seg_pipeline.sources import SOURCES_BY_NAME, Source

META_COLUMNS = {
    "_partition_date": "DATE NOT NULL",
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
MAX_LINE_BYTES = 8 * 1024 * 1024


class LandingFileError(ValueError):
    """A landing file is missing or unusable; the message names the file and the problem."""


@dataclass
class LoadResult:
    """What loading one file did."""

    source: str
    partition_date: date
    path: Path
    rows_loaded: int = 0
    rows_rejected: int = 0
    extra_columns: list[str] = field(default_factory=list)

    @property
    def source_file(self) -> str:
        """The file relative to the landing folder (``orders/2026-01-16.csv``), as stored."""
        return f"{self.path.parent.name}/{self.path.name}"


def raw_table(source: Source) -> str:
    return f"raw_{source.name}"


def raw_column_types(source: Source) -> dict[str, str]:
    """Column -> DuckDB type of ``raw_<source>``, in file-contract order, then the meta columns."""
    declared = PARQUET_TYPES.get(source.name, {})
    types = {c: declared.get(c, "VARCHAR") for c in source.columns}
    return {**types, **META_COLUMNS}


def ensure_raw_tables(conn: duckdb.DuckDBPyConnection, source: Source) -> None:
    """Create ``raw_<source>`` and the quarantine table if they do not exist yet."""
    cols = ", ".join(f'"{c}" {t}' for c, t in raw_column_types(source).items())
    conn.execute(f"CREATE TABLE IF NOT EXISTS {raw_table(source)} ({cols})")
    ensure_quarantine_table(conn)


def delete_window(conn: duckdb.DuckDBPyConnection, source: Source, start: date, end: date) -> None:
    """Remove the rows and rejects of partitions [start, end] before they are loaded again."""
    conn.execute(
        f"DELETE FROM {raw_table(source)} WHERE _partition_date BETWEEN $start AND $end",
        {"start": start, "end": end},
    )
    clear_quarantine(conn, raw_table(source), start, end)


def load_file(
    conn: duckdb.DuckDBPyConnection,
    source: Source,
    path: Path,
    partition_date: date,
    max_wrong_day_share: float = 0.5,
) -> LoadResult:
    """Append the rows of one landing file to ``raw_<source>``; see the module docstring.

    A file whose rows mostly happened on another day than its own (more than
    ``max_wrong_day_share`` of at least 20 dated rows) is taken for a misnamed file of another
    date and fails; so do a missing, empty or structurally wrong file.
    """
    if not path.exists():
        raise LandingFileError(
            f"{source.name}: landing file for {partition_date} is missing: {path}"
        )
    result = LoadResult(source=source.name, partition_date=partition_date, path=path)
    if path.stat().st_size == 0:
        # JSON lines have no header: an empty file is a day without rows. A CSV export always
        # has a header and a Parquet file a footer, so for them 0 bytes means a broken export.
        if source.file_format == "jsonl":
            return result
        raise LandingFileError(f"{source.name}: landing file is empty (0 bytes): {path}")
    loader = {"csv": _load_csv, "jsonl": _load_jsonl, "parquet": _load_parquet}
    loader[source.file_format](conn, source, path, result)
    if source.event_time:
        _check_file_day(conn, source, result, max_wrong_day_share)
    return result


def _check_file_day(
    conn: duckdb.DuckDBPyConnection, source: Source, result: LoadResult, max_share: float
) -> None:
    """Fail on a file that repeats another day's data under this day's name.

    A day's file may legitimately hold only late rows (a day without campaigns still brings
    late sends), so "most rows are from another day" is not enough: the file must also hold at
    least half as many of that day's rows as that day's own file delivered (or that day has no
    file loaded at all).
    """
    day_of = f'CAST(try_cast("{source.event_time}" AS TIMESTAMPTZ) AS DATE)'
    other, dated, usual = conn.execute(
        f"""SELECT count(*) FILTER (WHERE day <> $day), count(day), mode(day)
            FROM (SELECT {day_of} AS day FROM {raw_table(source)}
                  WHERE _partition_date = $day AND _source_file = $file)""",
        {"day": result.partition_date, "file": result.source_file},
    ).fetchone()
    if dated < 20 or other / dated <= max_share:
        return
    in_file, in_own_file = conn.execute(
        f"""SELECT count(*) FILTER (WHERE _partition_date = $day),
                   count(*) FILTER (WHERE _partition_date = $usual)
            FROM {raw_table(source)}
            WHERE _partition_date IN ($day, $usual) AND {day_of} = $usual""",
        {"day": result.partition_date, "usual": usual},
    ).fetchone()
    if in_own_file and in_file < 0.5 * in_own_file:
        return  # late rows of a busier day, not a copy of it
    raise LandingFileError(
        f"{source.name}: {result.path} is the file for {result.partition_date}, but {other} "
        f"of its {dated} rows ({other / dated:.0%}) happened on other days, mostly {usual}: "
        "it looks like the file of another date"
    )


def _insert_from_temp(
    conn: duckdb.DuckDBPyConnection,
    source: Source,
    select_columns: str,
    from_clause: str,
    result: LoadResult,
    params: dict[str, object] | None = None,
) -> None:
    row = conn.execute(
        f"""INSERT INTO {raw_table(source)} BY NAME
            SELECT {select_columns},
                   $partition_date::DATE AS _partition_date,
                   $source_file AS _source_file,
                   now()::TIMESTAMP AS _loaded_at
            FROM {from_clause}""",
        {
            "partition_date": result.partition_date,
            "source_file": result.source_file,
            **(params or {}),
        },
    ).fetchone()
    result.rows_loaded = int(row[0]) if row else 0


def _record_rejects(conn: duckdb.DuckDBPyConnection, result: LoadResult, select_sql: str) -> None:
    """Quarantine the unreadable lines ``select_sql`` lists (line_number, column_name,
    error_type, error_message, raw_line)."""
    source = result.source
    raw_line = "raw_line"
    if has_personal_columns(SOURCES_BY_NAME[source]):
        # An unreadable line cannot be split into fields to mask; point at it instead.
        raw_line = "'(withheld: personal data; see source_file and line_number)'"
    row = conn.execute(
        f"""INSERT INTO {QUARANTINE_TABLE}
            SELECT $source, $table_name, 'load', $partition_date::DATE,
                   lower(regexp_replace(error_type, '[^A-Za-z]+', '_', 'g')), error_message,
                   $source_file, line_number, column_name, {raw_line}, now()::TIMESTAMP
            FROM ({select_sql})""",
        {
            "source": source,
            "table_name": f"raw_{source}",
            "partition_date": result.partition_date,
            "source_file": result.source_file,
        },
    ).fetchone()
    result.rows_rejected += int(row[0]) if row else 0


def _check_columns(source: Source, path: Path, found: list[str], result: LoadResult) -> None:
    missing = [c for c in source.columns if c not in found]
    if missing:
        raise LandingFileError(
            f"{source.name}: {path} lacks required column(s) {', '.join(missing)} "
            f"(found: {', '.join(found) or 'none'})"
        )
    result.extra_columns = [c for c in found if c not in source.columns]


def _csv_header(path: Path) -> list[str]:
    with path.open("r", encoding="utf-8-sig", errors="replace", newline="") as handle:
        first = handle.readline()
    return [c.strip() for c in next(csv.reader([first]), [])]


def _read_lines(conn: duckdb.DuckDBPyConnection, path: Path, result: LoadResult) -> None:
    """Read a text file into temp table ``_lines(line_number, line)``, one row per physical line.

    JSON text cannot contain a raw \x1f, and our CSV contract has no newlines inside fields, so
    splitting on newlines only is safe. Lines that are not valid UTF-8 are rejected; the other
    lines keep their physical line numbers.
    """
    conn.execute(
        """CREATE OR REPLACE TEMP TABLE _lines AS
           SELECT row_number() OVER () AS line_number, line
           FROM read_csv($path, columns = {'line': 'VARCHAR'}, header = false,
                         delim = '\x1f', quote = '', escape = '', auto_detect = false,
                         max_line_size = $max_line, buffer_size = $buffer,
                         ignore_errors = true, store_rejects = true,
                         rejects_table = '_line_rejects', rejects_scan = '_line_rejects_scan')""",
        {"path": str(path), "max_line": MAX_LINE_BYTES, "buffer": 4 * MAX_LINE_BYTES},
    )
    # A rejected line is missing from the numbering: shift the lines after it.
    conn.execute(
        """CREATE OR REPLACE TEMP TABLE _shift AS
           SELECT line - row_number() OVER (ORDER BY line) AS good_lines_before
           FROM (SELECT DISTINCT line FROM _line_rejects)"""
    )
    conn.execute(
        """UPDATE _lines SET line_number = line_number
               + (SELECT count(*) FROM _shift WHERE good_lines_before < _lines.line_number)
           WHERE EXISTS (SELECT 1 FROM _shift)"""
    )
    _record_rejects(
        conn,
        result,
        "SELECT line AS line_number, NULL AS column_name, 'INVALID ENCODING' AS error_type, "
        "'line is not valid UTF-8' AS error_message, first(csv_line) AS raw_line "
        "FROM _line_rejects GROUP BY line",
    )
    for table in ("_line_rejects", "_line_rejects_scan", "_shift"):
        conn.execute(f"DROP TABLE IF EXISTS {table}")


def _load_csv(
    conn: duckdb.DuckDBPyConnection, source: Source, path: Path, result: LoadResult
) -> None:
    header = _csv_header(path)
    _check_columns(source, path, header, result)
    if len(set(header)) != len(header):
        raise LandingFileError(f"{source.name}: {path} has duplicate column names: {header}")
    _read_lines(conn, path, result)
    # An unterminated quote would make a CSV parser swallow every following line into one
    # field; reject just that line instead, so the rest of the file still loads.
    _record_rejects(
        conn,
        result,
        "SELECT line_number, NULL AS column_name, 'UNTERMINATED QUOTE' AS error_type, "
        "'odd number of double quotes on the line' AS error_message, line AS raw_line "
        "FROM _lines WHERE line_number > 1 "
        "AND (length(line) - length(replace(line, '\"', ''))) % 2 = 1",
    )
    with tempfile.TemporaryDirectory(prefix="seg-load-") as tmp:
        cleaned = Path(tmp) / "lines.csv"
        # Each kept line is written back prefixed with its line number, so the parsed rows and
        # the parser's rejects both point at the line of the original file.
        conn.execute(
            f"""COPY (SELECT line_number::VARCHAR || ',' || line FROM _lines
                      WHERE line_number > 1 AND line IS NOT NULL
                        AND (length(line) - length(replace(line, '"', ''))) % 2 = 0
                      ORDER BY line_number)
                TO '{cleaned}' (FORMAT csv, HEADER false, QUOTE '', ESCAPE '', DELIMITER '\x1f')"""
        )
        conn.execute(
            """CREATE OR REPLACE TEMP TABLE _file AS
               SELECT * FROM read_csv($path, columns = $columns, header = false,
                                      auto_detect = false, delim = ',', quote = '"',
                                      escape = '"', ignore_errors = true, store_rejects = true,
                                      rejects_table = '_rejects', rejects_scan = '_rejects_scan',
                                      max_line_size = $max_line, buffer_size = $buffer)""",
            {
                "path": str(cleaned),
                "columns": {"_record_number": "BIGINT", **{c: "VARCHAR" for c in header}},
                "max_line": MAX_LINE_BYTES,
                "buffer": 4 * MAX_LINE_BYTES,
            },
        )
    columns = ", ".join(f'"{c}"' for c in source.columns)
    _insert_from_temp(conn, source, f"{columns}, _record_number", "_file", result)
    _record_rejects(
        conn,
        result,
        # DuckDB reports one error per missing column; keep one reject per line.
        "SELECT split_part(first(csv_line), ',', 1)::BIGINT AS line_number, "
        "string_agg(DISTINCT column_name, ', ') AS column_name, "
        "first(error_type ORDER BY error_type) AS error_type, "
        "string_agg(DISTINCT error_message, '; ') AS error_message, "
        "regexp_replace(first(csv_line), '^[0-9]+,', '') AS raw_line "
        "FROM _rejects GROUP BY line",
    )
    for table in ("_lines", "_file", "_rejects", "_rejects_scan"):
        conn.execute(f"DROP TABLE IF EXISTS {table}")


def _load_jsonl(
    conn: duckdb.DuckDBPyConnection, source: Source, path: Path, result: LoadResult
) -> None:
    _read_lines(conn, path, result)
    conn.execute(
        """CREATE OR REPLACE TEMP TABLE _json AS
           SELECT line_number, line,
                  coalesce(CASE WHEN json_valid(line) THEN json_type(line) = 'OBJECT' END, false)
                      AS is_valid
           FROM _lines WHERE line IS NOT NULL"""
    )
    found = [
        r[0]
        for r in conn.execute(
            "SELECT DISTINCT unnest(json_keys(line)) FROM _json WHERE is_valid"
        ).fetchall()
    ]
    order = {c: i for i, c in enumerate(source.columns)}
    found.sort(key=lambda c: (order.get(c, len(order)), c))
    _check_columns(source, path, found, result)
    # One extraction call with a list of paths parses each line once (about 4x faster than
    # one json_extract_string per column).
    paths = ", ".join(f"'$.\"{c}\"'" for c in source.columns)
    columns = ", ".join(f'_v[{i}] AS "{c}"' for i, c in enumerate(source.columns, start=1))
    _insert_from_temp(
        conn,
        source,
        f"{columns}, line_number AS _record_number",
        f"(SELECT line_number, json_extract_string(line, [{paths}]) AS _v "
        "FROM _json WHERE is_valid)",
        result,
    )
    _record_rejects(
        conn,
        result,
        "SELECT line_number, NULL AS column_name, 'INVALID JSON' AS error_type, "
        "'line is not a valid JSON object' AS error_message, line AS raw_line "
        "FROM _json WHERE NOT is_valid",
    )
    for table in ("_lines", "_json"):
        conn.execute(f"DROP TABLE IF EXISTS {table}")


def _load_parquet(
    conn: duckdb.DuckDBPyConnection, source: Source, path: Path, result: LoadResult
) -> None:
    try:
        described = conn.execute(
            "DESCRIBE SELECT * FROM read_parquet($path)", {"path": str(path)}
        ).fetchall()
    except duckdb.Error as exc:
        raise LandingFileError(
            f"{source.name}: {path} is not a readable Parquet file: {exc}"
        ) from exc
    found_types = {r[0]: r[1] for r in described}
    _check_columns(source, path, list(found_types), result)
    declared = PARQUET_TYPES[source.name]
    for column, expected in declared.items():
        if found_types[column] not in _COMPATIBLE[expected]:
            raise LandingFileError(
                f"{source.name}: {path} column {column} has type {found_types[column]}, "
                f"expected {expected}"
            )
    columns = ", ".join(f'CAST("{c}" AS {declared[c]}) AS "{c}"' for c in source.columns)
    _insert_from_temp(
        conn,
        source,
        f"{columns}, file_row_number + 1 AS _record_number",
        "read_parquet($path, file_row_number = true)",
        result,
        {"path": str(path)},
    )
