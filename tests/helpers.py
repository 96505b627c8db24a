"""Small helpers the pipeline tests share."""

from __future__ import annotations

import re
from typing import Any

import duckdb
from dagster import ExecuteInProcessResult

# Inline PNGs (segmentation plots) in metadata markdown: base64 holds every short string by
# chance and no '@', and a pattern search over their 60 KB runs can backtrack for minutes.
PNG_DATA = re.compile(r"data:image/png;base64,[A-Za-z0-9+/=]+")

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


def materializations(result: ExecuteInProcessResult) -> dict[str, dict[str, Any]]:
    """Metadata of each asset materialized by the run (the last one per asset)."""
    return {
        e.event_specific_data.materialization.asset_key.to_user_string(): (
            e.event_specific_data.materialization.metadata
        )
        for e in result.all_events
        if e.event_type_value == "ASSET_MATERIALIZATION"
    }


def metadata_text(metadata: Any) -> str:
    """``metadata`` as text to search for personal data, inline PNGs replaced by ``<png>``."""
    return PNG_DATA.sub("<png>", str(metadata))
