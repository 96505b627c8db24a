"""Great Expectations suites as reviewable JSON, and everything a validation needs around them.

One file per table, ``expectations/<table>.json``, in the GX 1.x ExpectationSuite shape
(``name``, ``expectations[{type, kwargs, meta}]``, ``meta``). Values that depend on the run are
suite parameters (``{"$PARAMETER": "name"}``) computed here for each validation:

- ``window_start`` / ``window_end``: the first and last partition day of the run
  (``window_end_year``: its year);
- ``lateness_days``: ``QualityPolicy.max_lateness_days``, the lateness staging accepts (one
  setting for the quarantine rules and the suites, never copied into a suite file);
- ``earliest_real_date``: ``window_start`` minus ``lateness_days``;
- ``now``: the time of the check (real timestamps must not lie in the future);
- ``min_row_count``: per day, ``meta.row_count_ratio`` (default 10%) of the median row count of
  the previous 7 partitions.

Each expectation's ``meta`` carries ``severity`` (``ERROR`` gates, ``WARN`` soft signals) and
an optional ``scope``: ``rows`` (default, validated on the window's rows) or ``partition``
(validated once per day on that day's row count: the row-count rule).

A rule that needs another table or a whole group of rows (a customer known to the CRM by the
row's arrival day, days between a row's real and arrival day) is computed by DuckDB as a
*derived column* while the window is read, and a plain GX expectation evaluates that column.
Derived columns are declared in the suite's ``meta.derived_columns``: ``name`` (starts with
``_``), ``sql`` (a DuckDB expression over the table, aliased ``t``), ``columns`` (the table
columns it reads) and ``notes``. Besides ``$start_date``/``$end_date`` (the window), its SQL may
use ``$max_quarantine_share`` (the source's ``QualityPolicy.max_quarantine_share``) and
``$min_rows_for_share`` (``QualityPolicy.min_rows_for_share``), so a raw gate judges a day's
share of rows staging will quarantine exactly as the quarantine does. Set-membership against
~100,000 customer ids costs DuckDB a hash join of milliseconds; as a GX ``value_set`` parameter
it cost GX tens of seconds.

Nothing here imports ``great_expectations``: it is slow to import and only the check bodies
need it (see :mod:`seg_pipeline.quality.checks`).
"""

from __future__ import annotations

import json
import re
import statistics
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from seg_pipeline.metadata import is_personal
from seg_pipeline.partitions import days_between
from seg_pipeline.resources import table_columns
from seg_pipeline.settings import EXPECTATIONS_DIR
from seg_pipeline.sources import RAW_PARTITION_COLUMN, SOURCES, STAGING_PARTITION_COLUMN
from seg_pipeline.staging.models import MODELS

ERROR = "ERROR"
WARN = "WARN"
SEVERITIES = (ERROR, WARN)
ROW_SCOPE = "rows"
PARTITION_SCOPE = "partition"

HISTORY_DAYS = 7
MIN_HISTORY_DAYS = 3
MIN_ROW_COUNT_RATIO = 0.1
SAMPLE_VALUES = 5

# kwargs of an expectation that name one or more columns of its table
_COLUMN_KWARGS = ("column", "column_A", "column_B")
_COLUMN_LIST_KWARGS = ("column_list", "column_set")


@dataclass(frozen=True, kw_only=True)
class QualityTable:
    """A table with a suite: its name, the asset it belongs to, its partition column, its layer
    (``raw`` or ``staging``) and the source whose rows it holds (whose quarantine threshold
    its share rules use)."""

    table: str
    asset: str
    partition_column: str
    layer: str
    source: str


# One suite per raw table (one per source) and per staging table with row rules.
QUALITY_TABLES: tuple[QualityTable, ...] = (
    *(
        QualityTable(
            table=s.raw_table,
            asset=s.raw_table,
            partition_column=RAW_PARTITION_COLUMN,
            layer="raw",
            source=s.name,
        )
        for s in SOURCES
    ),
    *(
        QualityTable(
            table=m.table,
            asset=m.name,
            partition_column=STAGING_PARTITION_COLUMN,
            layer="staging",
            source=m.source.name,
        )
        for m in MODELS
        if m.row_rules
    ),
)
QUALITY_TABLES_BY_NAME = {t.table: t for t in QUALITY_TABLES}


def suite_path(table: str, directory: Path = EXPECTATIONS_DIR) -> Path:
    return directory / f"{table}.json"


def load_suite(table: str, directory: Path = EXPECTATIONS_DIR) -> dict[str, Any]:
    """The suite of ``table`` as a dict (GX ExpectationSuite JSON), checked for our meta keys."""
    path = suite_path(table, directory)
    if not path.exists():
        raise FileNotFoundError(f"no expectation suite for {table}: {path}")
    suite = json.loads(path.read_text(encoding="utf-8"))
    if suite.get("name") != table:
        raise ValueError(f"{path}: suite name {suite.get('name')!r} should be {table!r}")
    for i, expectation in enumerate(suite.get("expectations", [])):
        meta = expectation.setdefault("meta", {})
        if meta.get("severity") not in SEVERITIES:
            raise ValueError(f"{path}: expectation {i} needs meta.severity in {SEVERITIES}")
        if meta.setdefault("scope", ROW_SCOPE) not in (ROW_SCOPE, PARTITION_SCOPE):
            raise ValueError(f"{path}: expectation {i} has an unknown meta.scope")
    derived_columns(suite)  # malformed derived columns fail when the definitions load
    ratio = suite.get("meta", {}).get("row_count_ratio", MIN_ROW_COUNT_RATIO)
    if not 0 < ratio <= 1:
        raise ValueError(f"{path}: meta.row_count_ratio must be in (0, 1], not {ratio}")
    return suite


def row_count_ratio(suite: dict[str, Any]) -> float:
    """The share of the usual daily row count below which the row-count rule fails
    (``meta.row_count_ratio``, default 10%)."""
    return float(suite.get("meta", {}).get("row_count_ratio", MIN_ROW_COUNT_RATIO))


def split_suite(suite: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(row-scoped suite, partition-scoped suite): same name and meta, expectations divided."""
    parts = []
    for scope in (ROW_SCOPE, PARTITION_SCOPE):
        kept = [e for e in suite["expectations"] if e["meta"].get("scope", ROW_SCOPE) == scope]
        parts.append({**suite, "name": f"{suite['name']}.{scope}", "expectations": kept})
    return parts[0], parts[1]


UNIQUE_KEY_TYPE = "expect_compound_columns_to_be_unique"


def unique_keys_in_sql(suite: dict[str, Any]) -> dict[str, Any]:
    """``suite`` with each compound-uniqueness rule computed by DuckDB instead of pandas.

    A derived column ``_repeated_key_<n>`` holds, for every row whose key occurs more than once
    in the window, the key as JSON text (NULL for the other rows, and for rows whose key columns
    are all missing, which GX ignores too); the rule becomes ``expect_column_values_to_be_null``
    on it with the same ``mostly`` and ``meta`` (label, severity). The same rows are unexpected
    as in GX's own test (keep=False), and the sample shows the repeated keys. At 10M rows pandas
    took 8 s to hash the keys, DuckDB's window 5 s. A rule with other options stays with GX.
    """
    derived = list(derived_columns(suite))
    expectations = []
    for expectation in suite["expectations"]:
        kwargs = expectation.get("kwargs", {})
        if expectation["type"] != UNIQUE_KEY_TYPE or set(kwargs) - {"column_list", "mostly"}:
            expectations.append(expectation)
            continue
        name = f"_repeated_key_{len(derived)}"
        columns = list(kwargs["column_list"])
        key = ", ".join(f't."{c}"' for c in columns)
        fields = ", ".join(f'"{c}" := t."{c}"' for c in columns)
        all_missing = " AND ".join(f't."{c}" IS NULL' for c in columns)
        derived.append(
            {
                "name": name,
                "sql": f"CASE WHEN count(*) OVER (PARTITION BY {key}) > 1 "
                f"AND NOT ({all_missing}) THEN to_json(struct_pack({fields}))::VARCHAR END",
                "columns": columns,
                "notes": f"the key ({', '.join(columns)}) of a row whose key repeats",
            }
        )
        rule = {k: v for k, v in kwargs.items() if k == "mostly"}
        expectations.append(
            {
                **expectation,
                "type": "expect_column_values_to_be_null",
                "kwargs": {"column": name, **rule},
            }
        )
    meta = {**suite.get("meta", {}), "derived_columns": derived}
    return {**suite, "expectations": expectations, "meta": meta}


def derived_columns(suite: dict[str, Any]) -> list[dict[str, Any]]:
    """The suite's derived columns (``meta.derived_columns``), checked for their keys."""
    derived = suite.get("meta", {}).get("derived_columns", [])
    for column in derived:
        missing = {"name", "sql", "columns"} - set(column)
        if missing or not str(column.get("name", "")).startswith("_"):
            raise ValueError(
                f"suite {suite.get('name')}: derived column {column.get('name')!r} needs a name "
                f"starting with '_', sql and columns (missing {sorted(missing)})"
            )
    return derived


def expectation_columns(expectation: dict[str, Any]) -> list[str]:
    """The columns one expectation names (table or derived columns)."""
    kwargs = expectation.get("kwargs", {})
    columns = [kwargs[k] for k in _COLUMN_KWARGS if isinstance(kwargs.get(k), str)]
    for key in _COLUMN_LIST_KWARGS:
        if isinstance(kwargs.get(key), list):
            columns += [c for c in kwargs[key] if isinstance(c, str)]
    return columns


def suite_columns(suite: dict[str, Any]) -> list[str]:
    """Every table column the suite reads, in first-use order: those its expectations name
    (derived columns excepted) and those its derived columns are computed from."""
    derived = {d["name"]: d for d in derived_columns(suite)}
    seen: dict[str, None] = {}
    for expectation in suite["expectations"]:
        for column in expectation_columns(expectation):
            for used in derived[column]["columns"] if column in derived else [column]:
                seen.setdefault(used, None)
    return list(seen)


def suite_parameter_names(suite: dict[str, Any]) -> set[str]:
    """Names of the ``{"$PARAMETER": name}`` placeholders in the suite."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if "$PARAMETER" in value:
                found.add(value["$PARAMETER"])
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(suite["expectations"])
    return found


def expectation_label(expectation: dict[str, Any]) -> str:
    """A readable name: ``meta.id`` if given, else ``type(columns)``."""
    if expectation.get("meta", {}).get("id"):
        return str(expectation["meta"]["id"])
    columns = expectation_columns(expectation)
    kwargs = expectation.get("kwargs", {})
    if expectation["type"] == "expect_table_columns_to_match_set" or not columns:
        return expectation["type"]
    if "column_list" in kwargs:
        return f"{expectation['type']}({', '.join(columns)})"
    return f"{expectation['type']}({', '.join(columns)})"


def suite_labels(suite: dict[str, Any]) -> list[str]:
    """One unique label per expectation, in suite order."""
    labels: list[str] = []
    for expectation in suite["expectations"]:
        label = expectation_label(expectation)
        n = 2
        base = label
        while label in labels:
            label = f"{base}#{n}"
            n += 1
        labels.append(label)
    return labels


# -- run-time parameters -----------------------------------------------------------------------


def daily_row_counts(
    conn: duckdb.DuckDBPyConnection, spec: QualityTable, start: date, end: date
) -> dict[date, int]:
    """Rows per partition day in [start, end] (days without rows are absent)."""
    rows = conn.execute(
        f"SELECT {spec.partition_column}, count(*) FROM {spec.table} "
        f"WHERE {spec.partition_column} BETWEEN $start_date AND $end_date GROUP BY 1",
        {"start_date": start, "end_date": end},
    ).fetchall()
    return {(d if isinstance(d, date) else d.date()): int(n) for d, n in rows}


@dataclass(frozen=True)
class RowCountRule:
    """The row-count rule of one day: its count, the history and the minimum it must reach."""

    day: date
    row_count: int
    history: tuple[int, ...]
    min_row_count: int
    note: str


def row_count_rules(
    counts: dict[date, int],
    start: date,
    end: date,
    history_days: int = HISTORY_DAYS,
    min_history: int = MIN_HISTORY_DAYS,
    ratio: float = MIN_ROW_COUNT_RATIO,
) -> list[RowCountRule]:
    """For each day in [start, end]: fail below ``ratio`` x the median of the previous
    ``history_days`` partitions that have rows; with fewer than ``min_history`` of them the rule
    is skipped (minimum 0) and the note says why. ``counts`` must cover start - history_days."""
    rules = []
    for day in days_between(start, end):
        history = tuple(
            counts[d]
            for d in days_between(day - timedelta(days=history_days), day - timedelta(days=1))
            if counts.get(d)
        )
        n = counts.get(day, 0)
        if len(history) < min_history:
            rules.append(
                RowCountRule(
                    day,
                    n,
                    history,
                    0,
                    f"{day}: {n} rows; skipped, only {len(history)} of the previous "
                    f"{history_days} partitions have rows (need {min_history})",
                )
            )
            continue
        median = statistics.median(history)
        minimum = int(-(-ratio * median // 1))  # ceil
        rules.append(
            RowCountRule(
                day,
                n,
                history,
                minimum,
                f"{day}: {n} rows, median of previous {len(history)} partitions {median:g}, "
                f"minimum {minimum} ({ratio:.0%})",
            )
        )
    return rules


def row_parameters(
    suite: dict[str, Any],
    start: date,
    end: date,
    lateness_days: int,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The suite parameters of a window (only those the suite uses are returned).

    Dates are returned as pandas timestamps at midnight (naive, UTC) so they compare with the
    datetime columns the window is read into (DATE and TIMESTAMP both become datetime64[ns]).
    """
    import pandas as pd  # imported lazily like GX: only validation needs it

    names = suite_parameter_names(suite)
    now = now or datetime.now(UTC).replace(tzinfo=None)
    values: dict[str, Any] = {
        "window_start": pd.Timestamp(start),
        "window_end": pd.Timestamp(end),
        "window_end_year": end.year,
        "lateness_days": lateness_days,
        "earliest_real_date": pd.Timestamp(start - timedelta(days=lateness_days)),
        "now": pd.Timestamp(now),
    }
    missing = names - set(values) - {"min_row_count"}
    if missing:
        raise ValueError(f"suite {suite['name']} uses unknown parameter(s) {sorted(missing)}")
    return {k: v for k, v in values.items() if k in names}


table_column_types = table_columns  # the name the checks and tests use


_INTEGER_TYPES = {
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
}


def read_cast(column_type: str) -> str | None:
    """The type a column is read as, so GX's pandas engine compares it vectorised (its
    ``between`` falls back to a Python loop for anything but int64/float64/datetime64[ns]):
    dates and time-zone-aware timestamps (UTC wall time; the session time zone is UTC) become
    TIMESTAMP, decimals DOUBLE, smaller integers BIGINT. ``None``: read as it is."""
    if column_type in ("DATE", "TIMESTAMP WITH TIME ZONE"):
        return "TIMESTAMP"
    if column_type.startswith("DECIMAL"):
        return "DOUBLE"
    if column_type in _INTEGER_TYPES - {"BIGINT"}:
        return "BIGINT"
    return None


def select_sql(
    spec: QualityTable,
    columns: list[str],
    types: dict[str, str] | None = None,
    derived: list[dict[str, Any]] | None = None,
) -> str:
    """The window's rows: only the table columns a suite needs (cast by :func:`read_cast`) and
    its derived columns, computed by DuckDB over the table aliased ``t``."""
    types = types or {}

    def expr(column: str) -> str:
        cast = read_cast(types.get(column, ""))
        return f't."{column}"' if cast is None else f'CAST(t."{column}" AS {cast}) AS "{column}"'

    parts = [expr(c) for c in columns]
    parts += [f'({column["sql"]}) AS "{column["name"]}"' for column in derived or []]
    select = ", ".join(parts) or "1 AS _row"
    return (
        f"SELECT {select} FROM {spec.table} AS t "
        f"WHERE t.{spec.partition_column} BETWEEN $start_date AND $end_date"
    )


# -- masking personal data in results ----------------------------------------------------------

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
MASK = "***"


def mask_value(value: Any) -> Any:
    """``a***@***.com`` for something that looks like an email, ``***`` for anything else
    personal; ``None`` stays ``None``."""
    if value is None:
        return None
    text = str(value)
    if _EMAIL.search(text):
        local, _, domain = text.partition("@")
        tld = domain.rsplit(".", 1)[1] if "." in domain else ""
        return f"{local[:1]}***@***" + (f".{tld}" if tld and len(tld) <= 6 else "")
    return MASK


def mask_if_personal(column: str | None, value: Any) -> Any:
    """Mask ``value`` if its column holds personal data, or if it looks like an email anyway."""
    if isinstance(value, dict):
        return {k: mask_if_personal(k, v) for k, v in value.items()}
    if column is not None and is_personal(column):
        return mask_value(value)
    if isinstance(value, str) and _EMAIL.search(value):
        return mask_value(value)
    return value
