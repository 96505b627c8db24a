"""Retention: landing files and raw rows older than the configured number of days are purged,
and each purge is audited.

A day is expired on ``as_of_date`` when it is more than ``retention_days`` days before it
(``SEG_RETENTION_DAYS``, default 730: ``Settings.retention_days``). :func:`purge_expired` deletes,
in one warehouse transaction, the rows of every ``raw_<source>`` table and of the quarantine
(which quotes delivered records) whose partition day is expired, records a ``retention_runs``
row (cut-off, rows per table, files), commits, and then deletes the expired landing files
(``<landing>/<source>/<YYYY-MM-DD>.<ext>``). Re-running it deletes nothing more.

What stays: the staging tables and everything built on them. The features carry their running
totals from day to day (``customer_feature_state``) and the models train on staging history, so
they keep working on the retained window; the raw copy as delivered is what goes. An expired
day can no longer be loaded again: its raw load fails, naming the purge.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb

from seg_pipeline.names import iso_day, sql_identifier
from seg_pipeline.resources import run_sql, table_exists, transaction
from seg_pipeline.sources import RAW_PARTITION_COLUMN, SOURCES


@dataclass(frozen=True)
class RetentionReport:
    """What one purge removed."""

    cutoff: date
    rows_by_table: dict[str, int]
    files: list[str]


def retention_cutoff(as_of_date: date, retention_days: int) -> date:
    """The oldest day kept on ``as_of_date``: days before it are expired."""
    return as_of_date - timedelta(days=retention_days)


def expired_landing_files(landing_dir: Path, cutoff: date) -> list[Path]:
    """The landing files of days before ``cutoff``, every source, oldest first."""
    files = []
    for source in SOURCES:
        folder = Path(landing_dir) / source.name
        for path in sorted(folder.glob(f"*.{source.extension}")) if folder.is_dir() else []:
            try:
                day = iso_day(path.stem, "landing file name")
            except ValueError:
                continue  # not a day's file: left alone
            if day < cutoff and path.is_file() and not path.is_symlink():
                files.append(path)
    return files


def purge_expired(
    conn: duckdb.DuckDBPyConnection,
    landing_dir: Path,
    as_of_date: date,
    retention_days: int,
    run_id: str = "",
) -> RetentionReport:
    """Purge the raw rows, quarantine rows and landing files of the days expired on
    ``as_of_date`` (module docstring); returns what went."""
    cutoff = retention_cutoff(as_of_date, retention_days)
    files = expired_landing_files(landing_dir, cutoff)
    rows: dict[str, int] = {}
    run_sql(conn, "privacy/create_retention_runs")
    with transaction(conn):
        for source in SOURCES:
            if table_exists(conn, source.raw_table):
                rows[source.raw_table] = _delete_before(
                    conn, source.raw_table, RAW_PARTITION_COLUMN, cutoff
                )
        if table_exists(conn, "quarantine"):
            rows["quarantine"] = _delete_before(conn, "quarantine", "arrival_date", cutoff)
        run_sql(
            conn,
            "privacy/record_retention_run",
            {
                "run_id": run_id,
                "as_of_date": as_of_date,
                "cutoff_date": cutoff,
                "retention_days": retention_days,
                "purged_at": datetime.now(UTC).replace(tzinfo=None),
                "tables": json.dumps(rows, sort_keys=True),
                "files": json.dumps([str(p) for p in files]),
            },
        )
    for path in files:
        path.unlink(missing_ok=True)
    return RetentionReport(cutoff, rows, [str(p) for p in files])


def _delete_before(conn: duckdb.DuckDBPyConnection, table: str, column: str, cutoff: date) -> int:
    """Delete ``table``'s rows whose ``column`` day is before ``cutoff``; rows deleted."""
    table, column = sql_identifier(table, "table"), sql_identifier(column, "column")
    (count,) = conn.execute(
        f"DELETE FROM {table} WHERE {column} < $cutoff_date", {"cutoff_date": cutoff}
    ).fetchall()[0]
    return int(count)


def purged_before(conn: duckdb.DuckDBPyConnection) -> date | None:
    """The latest cut-off of any purge (days before it are gone), or None."""
    if not table_exists(conn, "retention_runs"):
        return None
    return run_sql(conn, "privacy/latest_retention_cutoff").fetchall()[0][0]
