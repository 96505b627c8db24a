"""The quarantine: every delivered row that did not make it into a table, with its reason.

Two stages write here. Loading (``stage = 'load'``) records lines no parser could read;
staging (``stage = 'staging'``) records rows that break a row rule of their ``stg_*`` SQL
(``_rule``/``_reason`` columns). Each row keeps its file and line and the raw record, with
personal fields replaced by their keyed hash, so nothing is lost and nothing personal leaks.
Each asset replaces only its own rows for its partition window, like every other table.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import duckdb
from dagster import ConfigurableResource
from pydantic import Field

from seg_pipeline.metadata import PERSONAL_COLUMNS
from seg_pipeline.resources import run_sql
from seg_pipeline.sources import Source

QUARANTINE_TABLE = "quarantine"


class QualityPolicy(ConfigurableResource):
    """Row rules' parameters and how much quarantine a partition may have before it fails."""

    max_lateness_days: int = Field(
        default=7, description="Rows older than their arrival day by more are quarantined."
    )
    max_text_length: int = Field(
        default=20_000, description="Longer review texts are quarantined (text_too_long)."
    )
    max_quarantine_share: dict[str, float] = Field(
        default={
            "crm_customers": 0.05,
            "orders": 0.10,
            "web_events": 0.10,
            "reviews": 0.10,
            "campaign_sends": 0.10,
        },
        description="Per source: the share of a day's rows that may be quarantined before the "
        "partition fails loudly.",
    )
    min_rows_for_share: int = Field(
        default=500,
        description="Days with fewer rows are judged as if they had this many, so a handful of "
        "late or broken rows cannot fail a small day on their own (a day of 140 order lines "
        "with 2% of each kind of planted problem reaches 10% by chance).",
    )
    max_wrong_day_share: float = Field(
        default=0.5,
        description="A file whose share of rows dated on another day exceeds this is taken "
        "for the file of another date and fails.",
    )

    def threshold(self, source: str) -> float:
        return self.max_quarantine_share.get(source, 0.10)


def ensure_quarantine_table(conn: duckdb.DuckDBPyConnection) -> None:
    """Create the quarantine table (``sql/quality/quarantine_table.sql``) if it does not exist."""
    run_sql(conn, "quality/quarantine_table")


def clear_quarantine(
    conn: duckdb.DuckDBPyConnection, table_name: str, start: date, end: date
) -> None:
    """Remove ``table_name``'s quarantine rows of [start, end] before they are written again."""
    ensure_quarantine_table(conn)
    run_sql(
        conn,
        "quality/clear_quarantine",
        {"table_name": table_name, "start_date": start, "end_date": end},
    )


def masked_record_sql(source: Source, alias: str) -> str:
    """SQL for a JSON text of ``alias``'s raw columns, personal ones as keyed hashes.

    A projection built from the file contract (the source's raw columns and which are
    personal), like the raw tables' DDL: the one place SQL is assembled from identifiers here.
    A source whose personal columns live in the vault (the CRM) has only their keyed hashes in
    its raw table, which are quoted as they are."""
    fields = ", ".join(
        f'"{c}" := pseudonymize({alias}."{c}"::VARCHAR)'
        if c in PERSONAL_COLUMNS
        else f'"{c}" := {alias}."{c}"'
        for c in source.raw_columns
    )
    return f"to_json(struct_pack({fields}))::VARCHAR"


def has_personal_columns(source: Source) -> bool:
    return any(c in PERSONAL_COLUMNS for c in source.columns)


def quarantine_staged_rows(
    conn: duckdb.DuckDBPyConnection, source: Source, table_name: str, staged: str
) -> None:
    """Copy the rows of temp table ``staged`` that carry a ``_rule`` into the quarantine, each
    with its raw record (personal fields as keyed hashes) found by file and line."""
    raw = source.raw_table
    conn.execute(
        f"""INSERT INTO {QUARANTINE_TABLE}
            SELECT $source, $table_name, 'staging', s.arrival_date, s._rule, s._reason,
                   s._source_file, s._record_number, NULL, {masked_record_sql(source, "r")},
                   now()::TIMESTAMP
            FROM {staged} AS s
            LEFT JOIN {raw} AS r
              ON r._partition_date = s.arrival_date
             AND r._source_file = s._source_file
             AND r._record_number = s._record_number
            WHERE s._rule IS NOT NULL""",
        {"source": source.name, "table_name": table_name},
    )


def format_counts(counts: Iterable[tuple[str, int]]) -> str:
    return ", ".join(f"{rule}: {n}" for rule, n in counts) or "none"
