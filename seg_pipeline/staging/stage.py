"""Run one staging SQL file over a window: good rows to the table, bad rows to quarantine.

A staging SQL file selects every raw row of the window with its typed columns and three
control columns: ``_rule``/``_reason`` (why the row breaks a row rule, NULL when it does not)
and ``_is_redundant`` (an exact repeat or a superseded version, dropped without quarantine).
This module splits them, checks the day's quarantine share against the policy and writes both
tables in one transaction. Plain functions: the asset calls them, tests call them directly.
The queries over the split rows (temp table ``_staged``) are ``sql/quality/staged_*.sql`` and
``sql/quality/quarantine_share_by_day.sql``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import duckdb

from seg_pipeline.quality.quarantine import (
    QualityPolicy,
    clear_quarantine,
    format_counts,
    quarantine_staged_rows,
)
from seg_pipeline.resources import (
    bind_params,
    drop_tables,
    read_sql,
    replace_window,
    run_sql,
    table_columns,
    transaction,
)
from seg_pipeline.sources import STAGING_PARTITION_COLUMN, Source

PARTITION_COLUMN = STAGING_PARTITION_COLUMN
STAGED = "_staged"


class QuarantineThresholdError(RuntimeError):
    """Too many of a day's rows broke row rules: the partition fails, the quarantine is kept."""


@dataclass
class StageOutcome:
    """What staging a window did."""

    rows_in: int = 0
    rows_written: int = 0
    rows_redundant: int = 0
    late_rows: int = 0  # kept rows that arrived after their real day (dated tables)
    quarantined: dict[str, int] = field(default_factory=dict)


def _query(
    conn: duckdb.DuckDBPyConnection, name: str, params: dict[str, object] | None = None
) -> list[tuple]:
    """Rows of ``sql/quality/<name>.sql`` with the parameters it names."""
    return run_sql(conn, f"quality/{name}", params).fetchall()


def stage_window(
    conn: duckdb.DuckDBPyConnection,
    *,
    sql: str,
    table: str,
    source: Source | None,
    start: date,
    end: date,
    policy: QualityPolicy,
) -> StageOutcome:
    """Stage [start, end] of one table; see the module docstring.

    ``source`` is the source whose rows the SQL checks (None for a table without row rules,
    whose rows are all written).

    Raises
    ------
    QuarantineThresholdError
        After writing the quarantine (so it can be inspected) but not the table, if a day's
        quarantined share passes ``policy.threshold(source.name)``.
    """
    params = {
        "start_date": start,
        "end_date": end,
        "max_lateness_days": policy.max_lateness_days,
        "max_text_length": policy.max_text_length,
    }
    conn.execute(f"CREATE OR REPLACE TEMP TABLE {STAGED} AS {sql}", bind_params(sql, params))
    columns = table_columns(conn, STAGED)
    if "_rule" not in columns:
        outcome = StageOutcome()
        with transaction(conn):
            outcome.rows_written = replace_window(
                conn, table, f"SELECT * FROM {STAGED}", {}, PARTITION_COLUMN, start, end
            )
        outcome.rows_in = outcome.rows_written
        drop_tables(conn, STAGED)
        return outcome

    threshold = policy.threshold(source.name if source else "")
    rows_in, rows_redundant = _query(conn, "staged_counts")[0]
    outcome = StageOutcome(
        rows_in=int(rows_in),
        rows_redundant=int(rows_redundant),
        quarantined={rule: int(n) for rule, n in _query(conn, "staged_rule_counts")},
    )
    if "is_late" in columns:
        outcome.late_rows = int(_query(conn, "staged_late_rows")[0][0])
    over = [
        f"{day}: {bad} of {delivered} rows ({bad / delivered:.0%}) quarantined "
        f"({format_counts((r['rule'], r['n']) for r in rules)})"
        for day, bad, delivered, rules in _query(
            conn,
            "quarantine_share_by_day",
            {"max_quarantine_share": threshold, "min_rows_for_share": policy.min_rows_for_share},
        )
    ]
    with transaction(conn):
        clear_quarantine(conn, table, start, end)
        if source is not None:
            quarantine_staged_rows(conn, source, table, STAGED)
        if not over:
            kept = read_sql("quality/staged_kept_rows")
            outcome.rows_written = replace_window(
                conn, table, kept, {}, PARTITION_COLUMN, start, end
            )
    drop_tables(conn, STAGED)
    if over:
        raise QuarantineThresholdError(
            f"{table}: too many rows broke row rules, so the partition was not staged "
            f"(threshold {threshold:.0%} for {source.name if source else table}); "
            + "; ".join(over)
            + ". The rows are in the quarantine table with their reasons."
        )
    return outcome
