"""Running the SQL files of the loaders, the staging split and the quality gates, and the few
generic table mechanics that take a table name (the only SQL these packages build in Python).

Every query that computes data is a file under ``sql/`` (``ingest/``, ``staging/``,
``quality/``) with its dates bound as ``$as_of_date``/``$start_date``/``$end_date``; these helpers
bind the parameters a file names and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import duckdb

from seg_pipeline.resources import bind_params, read_sql


def run_sql(
    conn: duckdb.DuckDBPyConnection, name: str, params: Mapping[str, Any] | None = None
) -> duckdb.DuckDBPyConnection:
    """Execute ``sql/<name>.sql`` with the subset of ``params`` it names; returns the cursor."""
    sql = read_sql(name)
    return conn.execute(sql, bind_params(sql, params or {}))


def define_macros(conn: duckdb.DuckDBPyConnection) -> None:
    """Define the SQL macros the loaders and the staging SQL share on ``conn``: the one
    timestamp rule ``utc_timestamp(value)`` (``sql/ingest/utc_timestamp.sql``)."""
    run_sql(conn, "ingest/utc_timestamp")


def table_columns(conn: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    """Column -> DuckDB type of ``table``, in table order."""
    return {r[0]: str(r[1]) for r in conn.execute(f"DESCRIBE {table}").fetchall()}


def drop_tables(conn: duckdb.DuckDBPyConnection, *tables: str) -> None:
    """Drop the (temporary) tables that exist among ``tables``."""
    for table in tables:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
