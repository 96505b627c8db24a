"""Deterministic data-quality problems injected into the landing files.

Every function takes a clean frame and a random generator and returns the damaged frame plus
how many rows it damaged, so the generator can report exactly what it planted.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from seg_pipeline.generator.ids import UNKNOWN_CUSTOMER_BASE

MESS_KINDS: tuple[str, ...] = (
    "duplicate",
    "late",
    "null",
    "malformed_email",
    "bad_price",
    "unknown_customer",
    "malformed_line",
)


MAX_LATE_DAYS = 3  # late rows arrive 1 to this many days after their own day


def _pick(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    if rate <= 0 or n == 0:
        return np.zeros(0, dtype=np.int64)
    return np.nonzero(rng.random(n) < rate)[0]


def unknown_customers(
    df: pl.DataFrame, rng: np.random.Generator, rate: float, col: str = "customer_id"
) -> tuple[pl.DataFrame, int]:
    """Point some rows at customer ids that never appear in the CRM."""
    s = df.get_column(col)
    idx = _pick(rng, df.height, rate)
    if idx.size:
        idx = idx[s.gather(idx).is_not_null().to_numpy()]
    if idx.size == 0:
        return df, 0
    nums = UNKNOWN_CUSTOMER_BASE + rng.integers(0, 9_999_999, size=idx.size)
    new = pl.Series([f"C{x:08d}" for x in nums.tolist()])
    return df.with_columns(s.scatter(idx, new)), int(idx.size)


def malformed_emails(
    df: pl.DataFrame, rng: np.random.Generator, rate: float
) -> tuple[pl.DataFrame, int]:
    """Break some e-mail addresses (missing @, spaces, double @@, trailing dot)."""
    s = df.get_column("email")
    idx = _pick(rng, df.height, rate)
    if idx.size:
        idx = idx[s.gather(idx).is_not_null().to_numpy()]
    if idx.size == 0:
        return df, 0
    kinds = rng.integers(0, 4, size=idx.size)
    bad = []
    for e, k in zip(s.gather(idx).to_list(), kinds.tolist(), strict=True):
        if k == 0:
            bad.append(e.replace("@", "", 1))
        elif k == 1:
            bad.append(e.replace("@", " @", 1))
        elif k == 2:
            bad.append(e.replace("@", "@@", 1))
        else:
            bad.append(e.replace("@", ".@", 1).replace(".", " ", 1))
    return df.with_columns(s.scatter(idx, pl.Series(bad))), int(idx.size)


def bad_prices(df: pl.DataFrame, rng: np.random.Generator, rate: float) -> tuple[pl.DataFrame, int]:
    """Set some unit prices to zero or to a negative amount."""
    s = df.get_column("unit_price")
    idx = _pick(rng, df.height, rate)
    if idx.size == 0:
        return df, 0
    old = s.gather(idx).fill_null(1.0).to_numpy()
    new = np.where(rng.random(idx.size) < 0.5, 0.0, -np.abs(old))
    return df.with_columns(s.scatter(idx, pl.Series(new))), int(idx.size)


def add_nulls(
    df: pl.DataFrame, rng: np.random.Generator, rate: float, cols: tuple[str, ...]
) -> tuple[pl.DataFrame, int]:
    """Blank one non-key column in some rows."""
    idx = _pick(rng, df.height, rate)
    if idx.size == 0 or not cols:
        return df, 0
    which = rng.integers(0, len(cols), size=idx.size)
    updates = []
    for j, c in enumerate(cols):
        sel = idx[which == j]
        if sel.size:
            updates.append(df.get_column(c).scatter(sel, None))
    return df.with_columns(updates), int(idx.size)


def split_late(
    df: pl.DataFrame, rng: np.random.Generator, rate: float
) -> tuple[pl.DataFrame, list[tuple[int, pl.DataFrame]]]:
    """Hold back some rows; returns the on-time rows and ``(delay_days, rows)`` pairs."""
    idx = _pick(rng, df.height, rate)
    if idx.size == 0:
        return df, []
    delay = rng.integers(1, MAX_LATE_DAYS + 1, size=idx.size)
    keep = np.ones(df.height, dtype=bool)
    keep[idx] = False
    late = [
        (int(k), df[idx[delay == k]]) for k in range(1, MAX_LATE_DAYS + 1) if (delay == k).any()
    ]
    return df.filter(pl.Series(keep)), late


def add_duplicates(
    df: pl.DataFrame, rng: np.random.Generator, rate: float
) -> tuple[pl.DataFrame, int]:
    """Repeat some rows a little further down the file (at-least-once delivery)."""
    idx = _pick(rng, df.height, rate)
    if idx.size == 0:
        return df, 0
    key = np.concatenate([np.arange(df.height), idx + rng.integers(1, 40, size=idx.size)])
    order = np.argsort(key, kind="stable")
    rows = np.concatenate([np.arange(df.height), idx])[order]
    return df[rows], int(idx.size)
