"""Readers for the landing files that tolerate planted malformed lines."""

from __future__ import annotations

import csv
import json
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from seg_pipeline.sources import SOURCES_BY_NAME


def days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def read_jsonl(path: Path) -> tuple[list[dict], int]:
    """Valid records and the number of lines that are not valid JSON objects."""
    rows, bad = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            bad += 1
    return rows, bad


def read_csv_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        return header, list(reader)


def load(landing: Path, source: str, start: date, end: date) -> pl.DataFrame:
    """All well-formed rows of a source over the days, as strings, with a ``file_day`` column."""
    src = SOURCES_BY_NAME[source]
    frames = []
    for day in days(start, end):
        path = src.path_for(landing, day)
        if src.file_format == "csv":
            header, rows = read_csv_rows(path)
            good = [r for r in rows if len(r) == len(header)]
            df = pl.DataFrame(good, schema=header, orient="row")
        elif src.file_format == "jsonl":
            recs, _ = read_jsonl(path)
            df = pl.DataFrame(
                [{k: (None if r[k] is None else str(r[k])) for k in src.columns} for r in recs],
                schema=dict.fromkeys(src.columns, pl.String),
            )
        else:
            df = pl.read_parquet(path)
        frames.append(df.with_columns(pl.lit(day).alias("file_day")))
    return pl.concat(frames, how="vertical_relaxed")
