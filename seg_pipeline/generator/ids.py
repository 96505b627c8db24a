"""Vectorised formatting helpers: identifiers, hex ids and timestamps."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_SHIFTS = (np.arange(15, -1, -1, dtype=np.uint64) * np.uint64(4))[None, :]
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
UNKNOWN_CUSTOMER_BASE = 90_000_000  # customer numbers from here on are never in the CRM


def prefixed(prefix: str, numbers: np.ndarray, width: int) -> pl.Series:
    """``prefix`` followed by zero-padded ``numbers`` (e.g. ``C00001234``)."""
    s = pl.Series(np.asarray(numbers, dtype=np.int64)).cast(pl.String).str.zfill(width)
    return pl.select(pl.lit(prefix) + s).to_series()


def customer_ids(idx: np.ndarray) -> pl.Series:
    """Customer id strings for 0-based customer indices (index 0 is ``C00000001``)."""
    return prefixed("C", np.asarray(idx, dtype=np.int64) + 1, 8)


def hex_ids(keys: np.ndarray, salt: int) -> pl.Series:
    """Random-looking but deterministic 16-hex-digit ids (a bijection of ``keys``)."""
    x = (np.asarray(keys, dtype=np.uint64) + np.uint64(salt)) * _GOLDEN
    x ^= x >> np.uint64(29)
    digits = ((x[:, None] >> _SHIFTS) & np.uint64(15)).astype(np.uint8)
    raw = np.ascontiguousarray(_HEX[digits]).view("S16").ravel()
    return pl.Series(raw).cast(pl.String)


def day_ms(day: date) -> int:
    """Epoch milliseconds of midnight UTC of ``day``."""
    return (day - date(1970, 1, 1)).days * 86_400_000


def fmt_utc_ms(ms: np.ndarray) -> pl.Series:
    """``2026-01-03T13:22:10.123Z`` strings from epoch milliseconds."""
    s = pl.Series(np.asarray(ms, dtype=np.int64)).cast(pl.Datetime("ms"))
    return s.dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ")


def fmt_utc_seconds(ms: np.ndarray) -> pl.Series:
    """``2026-01-03 13:22:10`` strings (UTC, no offset) from epoch milliseconds."""
    s = pl.Series(np.asarray(ms, dtype=np.int64)).cast(pl.Datetime("ms"))
    return s.dt.strftime("%Y-%m-%d %H:%M:%S")


def fmt_local(ms: np.ndarray, offset_min: np.ndarray, offset_str: pl.Series) -> pl.Series:
    """ISO-8601 local time with offset (``2026-01-03T14:22:10+01:00``)."""
    local = np.asarray(ms, dtype=np.int64) + np.asarray(offset_min, dtype=np.int64) * 60_000
    s = pl.Series(local).cast(pl.Datetime("ms")).dt.strftime("%Y-%m-%dT%H:%M:%S")
    return pl.select(s + offset_str).to_series()


def fmt_dates(epoch_days: np.ndarray) -> pl.Series:
    """``YYYY-MM-DD`` strings from days since 1970-01-01."""
    s = pl.Series(np.asarray(epoch_days, dtype=np.int32)).cast(pl.Date)
    return s.dt.strftime("%Y-%m-%d")
