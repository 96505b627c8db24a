"""The one daily partitions definition every partitioned asset shares, and its window.

A partition is a UTC calendar day: the day a source delivered its file (the arrival day). Rows
that happened earlier but arrived late keep their real event date in a column of their own.
A run covers a window of consecutive partitions (one day, or a whole backfill range).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Protocol

from dagster import DailyPartitionsDefinition, TimeWindow


class _HasPartitionWindow(Protocol):
    @property
    def partition_time_window(self) -> TimeWindow: ...


def daily_partitions(start_date: str) -> DailyPartitionsDefinition:
    """Daily partitions from ``start_date`` (YYYY-MM-DD) up to yesterday, in UTC."""
    return DailyPartitionsDefinition(start_date=start_date, timezone="UTC")


def window_dates(context: _HasPartitionWindow) -> tuple[date, date]:
    """First and last day (inclusive) of the partitions a run materializes or checks.

    Works for asset and asset-check contexts alike.
    """
    window = context.partition_time_window
    return window.start.date(), (window.end - timedelta(days=1)).date()


def days_between(start: date, end: date) -> list[date]:
    """Every day from ``start`` to ``end``, both included."""
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]
