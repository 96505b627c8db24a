"""Small helpers the pipeline tests share."""

from __future__ import annotations

import csv
import re
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
from dagster import ExecuteInProcessResult

from seg_pipeline.sources import CRM_CUSTOMERS

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


# Columns that differ between two runs writing the same rows: when (load and save times) and
# where (each warehouse has its own data folder; a model's artifact name holds its hash, and
# pickled scikit-learn objects are not byte-identical from one fit to the next).
RUN_SPECIFIC_COLUMNS = {"saved_at", "artifact_path", "content_hash", "file", "sha256"}


def warehouse_fingerprints(warehouse: Path) -> dict[str, tuple]:
    """Each table's content, order-independent, without run-specific columns."""
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT table_schema || '.' || table_name FROM information_schema.tables "
                "WHERE table_catalog = current_database() ORDER BY 1"
            ).fetchall()
        ]
        found = {}
        for table in tables:
            columns = [r[0] for r in conn.execute(f"DESCRIBE {table}").fetchall()]
            kept = [
                f'sum(hash("{c}"))'
                for c in columns
                if c not in LOAD_TIME_COLUMNS | RUN_SPECIFIC_COLUMNS
            ]
            found[table] = conn.execute(
                f"SELECT count(*), {', '.join(kept)} FROM {table}"
            ).fetchall()[0]
        return found


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


def landing_crm_records(landing_dir: Path, pattern: str = "*.csv") -> list[dict[str, str]]:
    """Every record of the CRM landing files under ``landing_dir`` (those matching
    ``pattern``), as delivered (the csv module reads the generator's malformed lines as far as
    they go)."""
    records = []
    for path in sorted((Path(landing_dir) / CRM_CUSTOMERS.name).glob(pattern)):
        with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
            records += [
                {c: row.get(c) or "" for c in CRM_CUSTOMERS.columns}
                for row in csv.DictReader(handle)
            ]
    return records


def landing_personal_values(landing_dir: Path, columns: tuple[str, ...] = ()) -> set[str]:
    """Every clear personal value (e-mail, phone, names, birth date, or just ``columns``) the
    CRM landing files under ``landing_dir`` delivered: what must never be in the warehouse."""
    wanted = columns or CRM_CUSTOMERS.personal
    return {r[c] for r in landing_crm_records(landing_dir) for c in wanted if r.get(c, "").strip()}


def landing_record(landing_dir: Path, day: date, record_number: int) -> dict[str, str]:
    """The CRM landing file's record of ``day`` on physical line ``record_number``."""
    path = CRM_CUSTOMERS.path_for(landing_dir, day)
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    header = next(csv.reader([lines[0]]))
    return dict(zip(header, next(csv.reader([lines[record_number - 1]])), strict=True))
