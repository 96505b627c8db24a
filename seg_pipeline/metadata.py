"""Materialization metadata shared by every warehouse asset: row counts, schema, preview,
plots.

Previews never show personal data: columns that hold it (or its hashes) are left out, and so
are a customer's structured attributes (birth year, age band, gender, country), which metadata
shows only as shares of a group (segment profiles).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

import duckdb
from dagster import ConfigurableResource, MetadataValue, TableColumn, TableSchema
from pydantic import Field

from seg_pipeline.names import path_under
from seg_pipeline.resources import query_frame

PERSONAL_COLUMNS = frozenset({"email", "phone", "first_name", "last_name", "birth_date"})
# One customer's structured attributes: not personal data in the sense above (kept in checks
# and quarantine), but shown only as shares of a group, never in a row preview.
DEMOGRAPHIC_COLUMNS = frozenset({"birth_year", "age_band", "gender", "country", "country_code"})
PREVIEW_ROWS = 5


def is_personal(column: str) -> bool:
    """True for columns that hold personal data or a pseudonym of it."""
    return column in PERSONAL_COLUMNS or column.endswith("_hash")


def column_schema(
    conn: duckdb.DuckDBPyConnection, table: str, descriptions: Mapping[str, str] | None = None
) -> TableSchema:
    """The table's columns and types, with their descriptions where known."""
    rows = conn.execute(f"DESCRIBE {table}").fetchall()
    described = descriptions or {}
    return TableSchema(
        columns=[
            TableColumn(name=name, type=str(col_type), description=described.get(name))
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
    descriptions: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Row count of the window, the table's schema (with column ``descriptions``) and a
    preview without personal data or demographic attributes."""
    params = {"start_date": start, "end_date": end}
    where = f"WHERE {partition_column} BETWEEN $start_date AND $end_date"
    row_count = conn.execute(f"SELECT count(*) FROM {table} {where}", params).fetchone()[0]
    schema = column_schema(conn, table, descriptions)
    meta: dict[str, Any] = {
        "dagster/row_count": int(row_count),
        "dagster/column_schema": schema,
        "dagster/table_name": table,
        "partition_window": f"{start.isoformat()}..{end.isoformat()}",
    }
    if preview:
        shown = [
            c.name
            for c in schema.columns
            if not is_personal(c.name) and c.name not in DEMOGRAPHIC_COLUMNS
        ]
        select = ", ".join(f'"{c}"' for c in shown)
        frame = query_frame(
            conn, f"SELECT {select} FROM {table} {where} LIMIT {PREVIEW_ROWS}", params
        )
        meta["preview"] = MetadataValue.md(markdown_table(shown, frame.rows()))
    return meta


class PlotFolder(ConfigurableResource):
    """Where plots are written: PNG files under ``plots_dir``, and inline in the metadata."""

    plots_dir: str = Field(description="Folder of the plot PNG files")

    def attach(
        self, meta: dict[str, Any], folder: str, name: str, png: bytes, alt: str
    ) -> dict[str, Any]:
        """Write ``png`` to ``<plots_dir>/<folder>/<name>.png`` and add it to ``meta`` as an
        inline image (``plot_<name>``) and its file path (``plot_<name>_file``)."""
        from seg_pipeline.segmentation import plots

        target = path_under(self.plots_dir, folder, f"{name}.png", what="plot file")
        path = plots.write_png(png, target)
        meta[f"plot_{name}"] = MetadataValue.md(plots.png_markdown(png, alt))
        meta[f"plot_{name}_file"] = MetadataValue.path(str(path))
        return meta
