"""Audience exports: the files a delivery tool picks up, written so that a reader never sees a
half-written day.

Per day, ``<export_dir>/<YYYY-MM-DD>/`` holds ``<campaign_id>.csv`` and ``.parquet`` for every
playbook campaign (treated customers only, a pseudonymous key instead of the customer id; an
empty file when nobody qualified) and ``manifest.json`` (row counts, SHA-256 of every file,
playbook and model versions). Only when a delivery folder is configured, ``<delivery_dir>/
<YYYY-MM-DD>/<campaign_id>.csv`` adds the customer id and the contact field the channel needs,
for customers whose consent holds that day: the one place personal data leaves, opened from
the vault (:mod:`seg_pipeline.privacy.vault`) for those customers only.

A day's folder is written beside the old one and swapped in by renames; a failed run leaves the
previous files (or none), a re-run replaces the day. CSV cells that a spreadsheet would run as
a formula are prefixed with ``'`` (see :func:`neutralise_csv_cells`); other text, ``<script>``
included, is data and written as it is (exports are not HTML). Parquet keeps every value
verbatim: its readers do not evaluate cells. Every file is written inside its configured
folder (``seg_pipeline.names.path_under``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Mapping
from datetime import date, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import polars as pl
from dagster import ConfigurableResource
from pydantic import Field

from seg_pipeline.activation.audiences import campaign_instance_id
from seg_pipeline.activation.playbook import Playbook, PlaybookFile
from seg_pipeline.names import check_export_folders, path_under
from seg_pipeline.privacy.vault import Vault
from seg_pipeline.resources import query_frame, read_sql, registered

T = TypeVar("T")
# OWASP's CSV-injection list (=, +, -, @, tab, carriage return) plus ASVS 1.2.10's NUL, a
# line feed, the full-width forms of the four signs (some spreadsheet locales read them as the
# ASCII ones) and any of the signs after leading spaces or control characters (some importers
# trim them before evaluating).
FORMULA_START = "^[\x00-\x20]*[=+\\-@\uff1d\uff0b\uff0d\uff20]|^[\x00\t\r\n]"
# A cell that is a plain number (a phone in international form, a negative amount) cannot run
# anything; prefixing it would corrupt the value the delivery tool reads.
PLAIN_NUMBER = r"^[+-]?[0-9]+(\.[0-9]+)?$"
MANIFEST = "manifest.json"
EXPORT_SCHEMA = {
    "as_of_date": pl.Date,
    "campaign_id": pl.String,
    "kind": pl.String,
    "file": pl.String,
    "row_count": pl.Int64,
    "sha256": pl.String,
    "playbook_version": pl.String,
}


class ExportFolders(ConfigurableResource):
    """Where audience exports go; the delivery export only when ``delivery_dir`` is set."""

    export_dir: str = Field(description="Audience exports: <export_dir>/<day>/<campaign>.*")
    delivery_dir: str | None = Field(
        default=None,
        description="Delivery export with contact fields (personal data); off when unset",
    )


def neutralise_csv_cells(frame: pl.DataFrame) -> pl.DataFrame:
    """String cells that a spreadsheet would evaluate as a formula get a leading ``'``: cells
    starting with ``=``, ``+``, ``-``, ``@`` (or their full-width forms), possibly after
    spaces or control characters, or with a tab, carriage return, line feed or NUL, unless
    the cell is a plain number (``PLAIN_NUMBER``)."""
    strings = [c for c, t in frame.schema.items() if t == pl.String]
    return frame.with_columns(
        pl.when(pl.col(c).str.contains(FORMULA_START) & ~pl.col(c).str.contains(PLAIN_NUMBER))
        .then(pl.lit("'") + pl.col(c))
        .otherwise(pl.col(c))
        .alias(c)
        for c in strings
    )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def replace_folder(target: Path, write: Callable[[Path], T]) -> T:
    """Fill a new folder with ``write`` and put it in ``target``'s place: a failure leaves
    ``target`` as it was (and no partial folder), a success replaces it whole. Returns what
    ``write`` returned."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for leftover in target.parent.glob(f".{target.name}.*"):
        shutil.rmtree(leftover, ignore_errors=True)
    staging = target.parent / f".{target.name}.partial-{os.getpid()}"
    staging.mkdir()
    try:
        result = write(staging)
        for entry in staging.iterdir():
            with entry.open("rb") as handle:
                os.fsync(handle.fileno())
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    old = target.parent / f".{target.name}.old-{os.getpid()}"
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return result


def _write_day(
    folder: Path,
    day: date,
    frames: Mapping[str, pl.DataFrame],
    formats: tuple[str, ...],
    manifest: dict[str, Any],
) -> list[dict[str, Any]]:
    """Write one file per campaign and format into ``folder`` plus the manifest; returns a
    row per file."""
    files = []
    for campaign_id, frame in frames.items():
        for fmt in formats:
            path = path_under(folder, f"{campaign_id}.{fmt}", what="export file")
            if fmt == "csv":
                neutralise_csv_cells(frame).write_csv(path)
            else:
                frame.write_parquet(path)
            files.append(
                {
                    "campaign_id": campaign_id,
                    "file": path.name,
                    "row_count": frame.height,
                    "sha256": file_sha256(path),
                }
            )
    manifest = {**manifest, "as_of_date": day.isoformat(), "files": files}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return files


def campaign_exports_of_day(
    conn: duckdb.DuckDBPyConnection,
    day: date,
    settings: Any,
    playbook: PlaybookFile,
    exports_folders: ExportFolders,
    vault: Vault,
) -> pl.DataFrame:
    """``campaign_exports`` rows of ``day`` (DailyTable compute): writes the day's files."""
    return export_day(conn, day, playbook.load(), exports_folders, vault)


def delivery_rows(conn: duckdb.DuckDBPyConnection, day: date, vault: Vault) -> pl.DataFrame:
    """The delivery export's rows of ``day``: the treated, consented customers
    (``sql/activation/delivery_customers.sql``) with the contact fields of their latest CRM
    record, opened from the vault for them only (``delivery_rows.sql``). A customer whose
    data key was destroyed gets no contact field."""
    customers = query_frame(conn, read_sql("activation/delivery_customers"), {"as_of_date": day})
    with vault.attached(conn) as sealed:
        contacts = sealed.read_records(customers.filter(pl.col("record_number").is_not_null()))
    with (
        registered(conn, "_delivery_customers", customers),
        registered(conn, "_contacts", contacts),
    ):
        return query_frame(conn, read_sql("activation/delivery_rows"))


def export_day(
    conn: duckdb.DuckDBPyConnection,
    day: date,
    playbook: Playbook,
    folders: ExportFolders,
    vault: Vault | None = None,
) -> pl.DataFrame:
    """Write the audience (and, if configured, delivery) export of ``day``; returns one row
    per file written. The delivery export needs the ``vault``."""
    send_date = day + timedelta(days=1)
    ids = [campaign_instance_id(c, send_date) for c in playbook.campaigns]
    versions = query_frame(conn, read_sql("activation/model_versions"), {"as_of_date": day})
    manifest = {
        "playbook_version": playbook.version,
        "playbook": Path(playbook.path).name,
        "model_versions": versions.row(0, named=True) if versions.height else {},
    }
    check_export_folders(folders.export_dir, folders.delivery_dir)
    exports = [
        (
            "audience",
            folders.export_dir,
            partial(query_frame, conn, read_sql("activation/export_rows"), {"as_of_date": day}),
            ("csv", "parquet"),
        )
    ]
    if folders.delivery_dir:
        if vault is None:
            raise ValueError("the delivery export needs the vault for its contact fields")
        exports.append(
            ("delivery", folders.delivery_dir, partial(delivery_rows, conn, day, vault), ("csv",))
        )
    rows = []
    for kind, root, select, formats in exports:
        found = select()
        frames = {i: found.filter(pl.col("campaign_id") == i) for i in ids}
        target = path_under(root, date.isoformat(day), what=f"{kind} export folder")
        written = replace_folder(
            target,
            partial(
                _write_day,
                day=day,
                frames=frames,
                formats=formats,
                manifest={**manifest, "kind": kind},
            ),
        )
        rows += [{**w, "kind": kind, "file": str(target / w["file"])} for w in written]
    return pl.DataFrame(
        [{**r, "as_of_date": day, "playbook_version": playbook.version} for r in rows],
        schema=EXPORT_SCHEMA,
    ).select(list(EXPORT_SCHEMA))
