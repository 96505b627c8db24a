"""Run one staging SQL file over a window: good rows to the table, bad rows to quarantine.

A staging SQL file selects every raw row of the window with its typed columns and three
control columns: ``_rule``/``_reason`` (why the row breaks a row rule, NULL when it does not)
and ``_is_redundant`` (an exact repeat or a superseded version, dropped without quarantine).
This module splits them, checks the day's quarantine share against the policy and writes both
tables in one transaction. Plain functions: the asset calls them, tests call them directly.
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
from seg_pipeline.resources import bind_params, replace_window, transaction
from seg_pipeline.sources import SOURCES_BY_NAME

PARTITION_COLUMN = "arrival_date"
CONTROL_COLUMNS = ("_rule", "_reason", "_is_redundant")
STAGED = "_staged"


class QuarantineThresholdError(RuntimeError):
    """Too many of a day's rows broke row rules: the partition fails, the quarantine is kept."""


@dataclass
class StageOutcome:
    """What staging a window did."""

    rows_in: int = 0
    rows_written: int = 0
    rows_redundant: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)


def stage_window(
    conn: duckdb.DuckDBPyConnection,
    *,
    sql: str,
    table: str,
    source_name: str | None,
    start: date,
    end: date,
    policy: QualityPolicy,
) -> StageOutcome:
    """Stage [start, end] of one table; see the module docstring.

    Raises
    ------
    QuarantineThresholdError
        After writing the quarantine (so it can be inspected) but not the table, if a day's
        quarantined share passes ``policy.threshold(source)``.
    """
    params = {
        "start_date": start,
        "end_date": end,
        "max_lateness_days": policy.max_lateness_days,
        "max_text_length": policy.max_text_length,
    }
    conn.execute(f"CREATE OR REPLACE TEMP TABLE {STAGED} AS {sql}", bind_params(sql, params))
    columns = [r[0] for r in conn.execute(f"DESCRIBE {STAGED}").fetchall()]
    outcome = StageOutcome(rows_in=_count(conn, f"SELECT count(*) FROM {STAGED}"))
    if "_rule" not in columns:
        with transaction(conn):
            outcome.rows_written = replace_window(
                conn, table, f"SELECT * FROM {STAGED}", {}, PARTITION_COLUMN, start, end
            )
        return outcome

    source = SOURCES_BY_NAME[source_name] if source_name else None
    over = _days_over_threshold(
        conn, policy.threshold(source_name or ""), policy.min_rows_for_share
    )
    outcome.rows_redundant = _count(
        conn, f"SELECT count(*) FROM {STAGED} WHERE _rule IS NULL AND _is_redundant"
    )
    outcome.quarantined = dict(
        conn.execute(
            f"SELECT _rule, count(*) FROM {STAGED} WHERE _rule IS NOT NULL GROUP BY 1 ORDER BY 1"
        ).fetchall()
    )
    with transaction(conn):
        clear_quarantine(conn, table, start, end)
        if source is not None:
            quarantine_staged_rows(conn, source, table, STAGED)
        if not over:
            kept = (
                f"SELECT * EXCLUDE ({', '.join(CONTROL_COLUMNS)}) FROM {STAGED} "
                "WHERE _rule IS NULL AND NOT _is_redundant"
            )
            outcome.rows_written = replace_window(
                conn, table, kept, {}, PARTITION_COLUMN, start, end
            )
    conn.execute(f"DROP TABLE IF EXISTS {STAGED}")
    if over:
        raise QuarantineThresholdError(
            f"{table}: too many rows broke row rules, so the partition was not staged "
            f"(threshold {policy.threshold(source_name or ''):.0%} for {source_name}); "
            + "; ".join(over)
            + ". The rows are in the quarantine table with their reasons."
        )
    return outcome


def _count(conn: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = conn.execute(sql).fetchone()
    return int(row[0]) if row else 0


def _days_over_threshold(
    conn: duckdb.DuckDBPyConnection, threshold: float, min_rows: int
) -> list[str]:
    rows = conn.execute(
        f"""SELECT arrival_date,
                   count(*) FILTER (WHERE _rule IS NOT NULL) AS bad,
                   count(*) FILTER (WHERE _rule IS NOT NULL OR NOT _is_redundant) AS delivered
            FROM {STAGED} GROUP BY arrival_date ORDER BY arrival_date"""
    ).fetchall()
    over = []
    for day, bad, delivered in rows:
        if bad > threshold * max(delivered, min_rows):
            rules = conn.execute(
                f"SELECT _rule, count(*) FROM {STAGED} WHERE arrival_date = $d "
                "AND _rule IS NOT NULL GROUP BY 1 ORDER BY 2 DESC",
                {"d": day},
            ).fetchall()
            over.append(
                f"{day}: {bad} of {delivered} rows ({bad / delivered:.0%}) quarantined "
                f"({format_counts(rules)})"
            )
    return over
