"""Materialization metadata shared by every warehouse asset: row counts, schema, preview.

Previews never show personal data: columns that hold it (or its hashes) are left out.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import duckdb
from dagster import MetadataValue, TableColumn, TableSchema

from seg_pipeline.resources import query_frame

PERSONAL_COLUMNS = frozenset({"email", "phone", "first_name", "last_name", "birth_date"})
PREVIEW_ROWS = 5


def is_personal(column: str) -> bool:
    """True for columns that hold personal data or a pseudonym of it."""
    return column in PERSONAL_COLUMNS or column.endswith("_hash")


def column_schema(conn: duckdb.DuckDBPyConnection, table: str) -> TableSchema:
    rows = conn.execute(f"DESCRIBE {table}").fetchall()
    return TableSchema(
        columns=[
            TableColumn(name=name, type=str(col_type), description=None)
            for name, col_type, *_ in rows
        ]
    )


def markdown_table(columns: list[str], rows: list[tuple[Any, ...]], max_width: int = 40) -> str:
    """A markdown table of ``rows``; cells longer than ``max_width`` characters are cut."""

    def cell(value: Any) -> str:
        text = "" if value is None else str(value)
        text = text.replace("|", "\\|").replace("\n", " ")
        return text if len(text) <= max_width else text[: max_width - 3] + "..."

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def window_metadata(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    partition_column: str,
    start: date,
    end: date,
    preview: bool = True,
) -> dict[str, Any]:
    """Row count of the window, the table's schema and a preview without personal data."""
    params = {"start": start, "end": end}
    where = f"WHERE {partition_column} BETWEEN $start AND $end"
    row_count = conn.execute(f"SELECT count(*) FROM {table} {where}", params).fetchone()[0]
    schema = column_schema(conn, table)
    meta: dict[str, Any] = {
        "dagster/row_count": int(row_count),
        "dagster/column_schema": schema,
        "dagster/table_name": table,
        "partition_window": f"{start.isoformat()}..{end.isoformat()}",
    }
    if preview:
        shown = [c.name for c in schema.columns if not is_personal(c.name)]
        select = ", ".join(f'"{c}"' for c in shown)
        frame = query_frame(
            conn, f"SELECT {select} FROM {table} {where} LIMIT {PREVIEW_ROWS}", params
        )
        meta["preview"] = MetadataValue.md(markdown_table(shown, frame.rows()))
    return meta
