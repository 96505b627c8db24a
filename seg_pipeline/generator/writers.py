"""Streaming writers for one landing file: CSV, JSON lines (appended per chunk) or Parquet.

The writer also plants the file-level mess: exact duplicate rows and (for text formats) rare
malformed lines spliced in between valid ones.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

import numpy as np
import polars as pl

from seg_pipeline.generator import mess
from seg_pipeline.sources import Source


def _serialise(df: pl.DataFrame, fmt: str, header: bool) -> bytes:
    buf = io.BytesIO()
    if fmt == "csv":
        df.write_csv(buf, include_header=header, float_precision=2)
    else:
        df.write_ndjson(buf)
    return buf.getvalue()


def _corrupt(line: bytes, fmt: str, rng: np.random.Generator) -> bytes:
    if fmt == "jsonl":
        cut = max(1, int(len(line) * rng.uniform(0.3, 0.9)))
        return line[:cut]
    kind = int(rng.integers(0, 3))
    if kind == 0:  # missing field
        return line.rsplit(b",", 1)[0]
    if kind == 1:  # extra field
        return line + b",EXTRA"
    return line.replace(b",", b',"', 1)  # unterminated quote


class DayFileWriter:
    """Write one source's file for one day, chunk by chunk.

    Parameters
    ----------
    source
        The contract entry (name, format, columns).
    path
        Destination file (parents are created).
    rng
        Random generator for file-level mess.
    messiness
        Rate of duplicates; malformed lines appear at ``messiness / 10``.
    expected_rows
        Rough row count of the whole file; with ``messiness > 0`` and at least 1,000 rows,
        the first chunk carries at least one malformed line.
    """

    def __init__(
        self,
        source: Source,
        path: Path,
        rng: np.random.Generator,
        messiness: float,
        expected_rows: int,
    ) -> None:
        self.source = source
        self.path = path
        self.rng = rng
        self.messiness = messiness
        self.expected_rows = expected_rows
        self.rows = 0
        self.counts = {"duplicate": 0, "malformed_line": 0}
        self._chunks = 0
        self._parquet: list[pl.DataFrame] = []
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: BinaryIO | None = None
        if source.file_format != "parquet":
            self._fh = open(path, "wb")  # noqa: SIM115 - closed in close()

    def write(self, df: pl.DataFrame) -> None:
        """Append a chunk (columns are selected in contract order)."""
        df = df.select(self.source.columns)
        df, n_dup = mess.add_duplicates(df, self.rng, self.messiness)
        self.counts["duplicate"] += n_dup
        self.rows += df.height
        first = self._chunks == 0
        self._chunks += 1
        fmt = self.source.file_format
        if fmt == "parquet":
            self._parquet.append(df)
            return
        assert self._fh is not None
        bad_idx = np.zeros(0, dtype=np.int64)
        if self.messiness > 0 and df.height:
            rate = self.messiness / 10
            k = int(self.rng.binomial(df.height, rate))
            if first and k == 0 and self.expected_rows >= 1000:
                k = 1
            k = min(k, df.height)
            if k:
                bad_idx = np.sort(self.rng.choice(df.height, size=k, replace=False))
        if bad_idx.size == 0:
            if df.height or first:
                self._fh.write(_serialise(df, fmt, header=first))
            return
        keep = np.ones(df.height, dtype=bool)
        keep[bad_idx] = False
        body = _serialise(df.filter(pl.Series(keep)), fmt, header=first)
        bad_lines = _serialise(df[bad_idx], fmt, header=False).rstrip(b"\n").split(b"\n")
        bad = [_corrupt(x, fmt, self.rng) + b"\n" for x in bad_lines]
        self.counts["malformed_line"] += len(bad)
        # splice each bad line in at a random line boundary (after the header)
        lo = body.find(b"\n") + 1 if (fmt == "csv" and first) else 0
        cuts = np.sort(self.rng.integers(lo, max(lo + 1, len(body)), size=len(bad)))
        view = memoryview(body)
        pos = 0
        for cut, line in zip(cuts.tolist(), bad, strict=True):
            nl = body.find(b"\n", max(cut, pos))
            at = len(body) if nl == -1 else nl + 1
            self._fh.write(view[pos:at])
            self._fh.write(line)
            pos = at
        self._fh.write(view[pos:])

    def close(self) -> None:
        """Finish the file (Parquet files are written here in one go)."""
        if self.source.file_format == "parquet":
            df = pl.concat(self._parquet)
            df.write_parquet(self.path, compression="zstd", statistics=True)
        elif self._fh is not None:
            if self._chunks == 0 and self.source.file_format == "csv":
                self._fh.write((",".join(self.source.columns) + "\n").encode())
            self._fh.close()
