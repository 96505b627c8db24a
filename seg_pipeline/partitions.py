"""The one daily partitions definition every partitioned asset shares.

A partition is a UTC calendar day: the day a source delivered its file (the arrival day). Rows
that happened earlier but arrived late keep their real event date in a column of their own.
"""

from __future__ import annotations

from dagster import DailyPartitionsDefinition


def daily_partitions(start_date: str) -> DailyPartitionsDefinition:
    """Daily partitions from ``start_date`` (YYYY-MM-DD) up to yesterday, in UTC."""
    return DailyPartitionsDefinition(start_date=start_date, timezone="UTC")
