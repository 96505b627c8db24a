"""Small helpers the pipeline tests share."""

from __future__ import annotations

import duckdb

# When a row was written differs between two runs that write the same rows.
LOAD_TIME_COLUMNS = {"_loaded_at", "quarantined_at"}


def fingerprint(conn: duckdb.DuckDBPyConnection, table: str) -> tuple:
    """Order-independent fingerprint of a table's content (load timestamps left out)."""
    columns = [r[0] for r in conn.execute(f"DESCRIBE {table}").fetchall()]
    kept = [f'sum(hash("{c}"))' for c in columns if c not in LOAD_TIME_COLUMNS]
    return conn.execute(f"SELECT count(*), {', '.join(kept)} FROM {table}").fetchone()


def duplicate_keys(conn: duckdb.DuckDBPyConnection, table: str, key: list[str]) -> int:
    cols = ", ".join(key)
    return conn.execute(
        f"SELECT count(*) FROM (SELECT {cols} FROM {table} GROUP BY {cols} HAVING count(*) > 1)"
    ).fetchone()[0]
