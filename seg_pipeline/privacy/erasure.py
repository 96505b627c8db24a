"""Erasure on request: a customer's rows leave every warehouse table the pipeline owns, in one
audited transaction that proves it before it commits.

Which tables: those the asset specs name in their ``seg/tables`` metadata (every raw, staging,
feature, score, audience and recommendation table, the quarantine and the suppression list),
not a hand-kept list; a table added by a new asset is covered by its factory. Which rows: the
warehouse catalogue says which columns of those tables hold an identifier, by the project's
column names (:data:`IDENTIFIER_COLUMNS`): customer ids, the keyed hashes of e-mail, phone and
name, and the web sessions the customer was seen in (the anonymous events of a session are the
customer's once stitched). Quarantined records (``raw_record``) that mention any of these
values go too.

What an erasure does (:func:`erase_customers`): it resolves the request (customer ids, keyed
hashes, or e-mail addresses looked up by their keyed hash) to the customers the CRM delivered;
with the vault attached, it then destroys the
customers' data keys and deletes their vault records (committed on their own: their clear
values are unreadable from then on, in every copy of the vault); then, inside one warehouse
transaction, it

1. collects the customers' identifiers (``sql/privacy/customer_identifiers.sql``);
2. deletes the rows of every owned table that carry one of them;
3. records the keyed hash of each customer id in ``erased_customers`` (every later load drops
   their rows: a re-delivered file or a backfill does not bring them back) and an audit row
   per customer in ``erasure_requests`` (request id, keyed hash, when, rows per table: no clear
   value, not even the id);
4. verifies (:func:`find_identifiers`): every text column of every table of the warehouse,
   owned or not, is searched for every identifier, and the vault must hold no key and no
   record of the customers; anything left fails the request and rolls the warehouse back.

The ledger tables hold the keyed hash of the id by design (they are how later loads recognise
the customer); the verification leaves them out.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from seg_pipeline.assets_common import TABLES_METADATA_KEY
from seg_pipeline.names import sql_identifier
from seg_pipeline.privacy.files import FileErasure, OwnedFiles, erase_from_files, find_in_files
from seg_pipeline.privacy.vault import CustomerErased, VaultSession
from seg_pipeline.resources import (
    query_frame,
    read_sql,
    registered,
    run_sql,
    table_columns,
    table_exists,
    transaction,
)

# Column name -> the kind of identifier it holds (sql/privacy/customer_identifiers.sql).
IDENTIFIER_COLUMNS: dict[str, str] = {
    "customer_id": "customer_id",
    "resolved_customer_id": "customer_id",
    "customer_key": "customer_key",
    "email_hash": "email_hash",
    "phone_hash": "phone_hash",
    "name_hash": "name_hash",
    "session_id": "session_id",
}
# Columns holding a delivered record as text: rows that mention an identifier go.
RECORD_COLUMNS: tuple[str, ...] = ("raw_record",)
# Kinds whose values are unique only within their own column: a web session id is a 64-bit
# value, as are event and anonymous visitor ids, and the same value may stand for another
# person's event or device (the generator's ids collide across kinds: seen at 5,000
# customers). Such values are looked for in their own column, and in delivered text only as
# that column's JSON pair (web events are JSON lines); every other value anywhere.
SCOPED_KINDS: tuple[str, ...] = ("session_id",)
LEDGER_TABLES: tuple[str, ...] = ("erased_customers", "erasure_requests")
# Removes customers' rows from model artifacts: (conn, customer ids) -> (rows removed per model
# version, replaced artifact files to delete after the commit).
ModelPurge = Callable[[duckdb.DuckDBPyConnection, Sequence[str]], tuple[dict[str, int], list[Path]]]
# Clear values searched for besides the identifiers (read from the vault before shredding).
CLEAR_CONTACT_FIELDS: tuple[str, ...] = ("email", "phone")
# Types whose values cannot hold an identifier (the rest is searched as text).
_NOT_TEXT = re.compile(
    r"^(BOOLEAN|TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|U\w*INT|FLOAT|DOUBLE|DECIMAL.*|DATE|"
    r"TIME.*|TIMESTAMP.*|INTERVAL|UUID|BLOB)$"
)


class ErasureError(Exception):
    """A request that cannot be carried out (nothing is changed)."""


@dataclass(frozen=True)
class ErasureReport:
    """What one request erased: per table the rows deleted, and what verification found."""

    request_id: str
    customers: int
    rows_by_table: dict[str, int] = field(default_factory=dict)
    rows_by_file: dict[str, int] = field(default_factory=dict)
    remaining: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def rows_deleted(self) -> int:
        return sum(self.rows_by_table.values())


def owned_tables(specs: Iterable[Any]) -> list[str]:
    """The warehouse tables that ``specs`` (Dagster asset specs) name in their
    ``seg/tables`` metadata, in first-seen order."""
    seen: dict[str, None] = {}
    for spec in specs:
        for name in str(spec.metadata.get(TABLES_METADATA_KEY, "")).split(","):
            if name.strip():
                seen.setdefault(sql_identifier(name.strip(), TABLES_METADATA_KEY), None)
    return list(seen)


def _quoted(name: str) -> str:
    """A table (``schema.table``) or column name from the catalogue or the asset specs, quoted
    (an embedded quote doubled): the erasure builds statements from names, never from the
    values of a request, which are always bound."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))


def keyed_hashes(conn: duckdb.DuckDBPyConnection, values: Sequence[str]) -> list[str]:
    """The keyed hash (``pseudonymize``) of each of ``values``, in order."""
    if not values:
        return []
    rows = run_sql(conn, "privacy/keyed_hashes", {"values": list(values)}).fetchall()
    return [r[0] for r in rows]


def resolve_customers(
    conn: duckdb.DuckDBPyConnection,
    customer_ids: Sequence[str] = (),
    emails: Sequence[str] = (),
    customer_keys: Sequence[str] = (),
    email_hashes: Sequence[str] = (),
) -> list[str]:
    """The customer ids of a request, from any of: ids; e-mail addresses (trimmed, lower case,
    found by their keyed hash); keyed hashes of ids (``customer_key``, as in the exports); keyed
    hashes of addresses. Only customers the CRM delivered count."""
    addresses = [e.strip().lower() for e in emails if e.strip()]
    keys = {k.strip().lower() for k in customer_keys if k.strip()}
    hashes = {h.strip().lower() for h in email_hashes if h.strip()}
    hashes |= set(keyed_hashes(conn, addresses))
    params = {
        "customer_ids": sorted({c.strip() for c in customer_ids if c.strip()}),
        "customer_keys": sorted(keys),
        "email_hashes": sorted(hashes),
    }
    return [r[0] for r in run_sql(conn, "privacy/requested_customers", params).fetchall()]


def customer_identifiers(
    conn: duckdb.DuckDBPyConnection, customer_ids: Sequence[str]
) -> pl.DataFrame:
    """Every identifier of ``customer_ids`` in the warehouse: (kind, value) rows."""
    ids = pl.DataFrame({"customer_id": list(customer_ids)}, schema={"customer_id": pl.String})
    with registered(conn, "_erase_ids", ids):
        return query_frame(conn, read_sql("privacy/customer_identifiers"))


def _literal(value: str) -> str:
    """``value`` as a regular expression that matches only itself, in every dialect the
    values meet (DuckDB's RE2, Python): letters and digits as they are, anything else as a
    one-character class."""
    return "".join(
        c if c.isalnum() or c == "_" else ("[\\" + c + "]" if c in "\\]^[" else f"[{c}]")
        for c in value
    )


def _token_pattern(values: Iterable[str]) -> str:
    """A regular expression matching any of ``values`` as a whole token of a text."""
    alternatives = "|".join(sorted({_literal(v) for v in values if v}, key=len, reverse=True))
    return rf"(?:^|[^0-9A-Za-z_])(?:{alternatives})(?:[^0-9A-Za-z_]|$)"


def search_values(identifiers: pl.DataFrame) -> list[str]:
    """The texts to look for in delivered records and files: every identifier as it is, but
    those of :data:`SCOPED_KINDS` only as their JSON pair (``"session_id":"…"``, with or
    without a space)."""
    found = []
    for kind, value in identifiers.select("kind", "value").iter_rows():
        if kind in SCOPED_KINDS:
            found += [f'"{kind}":"{value}"', f'"{kind}": "{value}"']
        else:
            found.append(value)
    return found


def _unscoped(identifiers: pl.DataFrame) -> list[str]:
    return identifiers.filter(~pl.col("kind").is_in(SCOPED_KINDS))["value"].to_list()


def delete_rows(
    conn: duckdb.DuckDBPyConnection, tables: Sequence[str], identifiers: pl.DataFrame
) -> dict[str, int]:
    """Delete from each of ``tables`` (those that exist) the rows whose identifier columns hold
    one of ``identifiers`` or whose record columns mention one (:func:`search_values`); rows
    deleted per table."""
    pattern = _token_pattern(search_values(identifiers))
    deleted: dict[str, int] = {}
    with registered(conn, "_erase_values", identifiers):
        for table in tables:
            if not table_exists(conn, table):
                continue
            columns = table_columns(conn, table)
            tests = [
                f"{_quoted(c)} IN (SELECT value FROM _erase_values WHERE kind = "
                f"'{IDENTIFIER_COLUMNS[c]}')"
                for c, kind in columns.items()
                if c in IDENTIFIER_COLUMNS and kind == "VARCHAR"
            ]
            tests += [
                f"coalesce(regexp_matches({_quoted(c)}, $pattern), false)"
                for c in columns
                if c in RECORD_COLUMNS
            ]
            if not tests:
                continue
            where = " OR ".join(tests)
            params = {"pattern": pattern} if "$pattern" in where else {}
            (count,) = conn.execute(
                f"DELETE FROM {_quoted(table)} WHERE {where}", params
            ).fetchall()[0]
            deleted[table] = int(count)
    return deleted


def find_identifiers(
    conn: duckdb.DuckDBPyConnection, identifiers: pl.DataFrame
) -> list[tuple[str, str, int]]:
    """(table, column, rows) wherever a text value of any table of the warehouse (ledger
    tables excepted) equals or contains one of ``identifiers`` as a token: the values of
    :data:`SCOPED_KINDS` in their own column and in record columns (as their JSON pair), the
    others in every column."""
    if identifiers.is_empty():
        return []
    unscoped = _unscoped(identifiers)
    everywhere = _token_pattern(unscoped) if unscoped else None
    patterns = {
        **dict.fromkeys(SCOPED_KINDS, _token_pattern(identifiers["value"].to_list())),
        **dict.fromkeys(RECORD_COLUMNS, _token_pattern(search_values(identifiers))),
    }
    catalogue = conn.execute(
        "SELECT table_schema, table_name, column_name, data_type "
        "FROM information_schema.columns "
        "WHERE table_catalog = current_database() AND table_schema NOT IN ('temp') "
        "ORDER BY table_schema, table_name, ordinal_position"
    ).fetchall()
    found = []
    for schema, table, column, data_type in catalogue:
        pattern = patterns.get(column, everywhere)
        if table in LEDGER_TABLES or _NOT_TEXT.match(str(data_type)) or pattern is None:
            continue
        name = table if schema == "main" else f"{schema}.{table}"
        (count,) = conn.execute(
            f"SELECT count(*) FROM {_quoted(name)} "
            f"WHERE regexp_matches(CAST({_quoted(column)} AS VARCHAR), $pattern)",
            {"pattern": pattern},
        ).fetchall()[0]
        if count:
            found.append((name, column, int(count)))
    return found


def erase_customers(
    conn: duckdb.DuckDBPyConnection,
    tables: Sequence[str],
    customer_ids: Sequence[str] = (),
    emails: Sequence[str] = (),
    customer_keys: Sequence[str] = (),
    email_hashes: Sequence[str] = (),
    request_id: str | None = None,
    now: datetime | None = None,
    vault: VaultSession | None = None,
    files: OwnedFiles | None = None,
    purge_models: ModelPurge | None = None,
) -> ErasureReport:
    """Erase the customers of one request (see the module docstring).

    With the ``vault`` attached, their clear e-mail addresses and phone numbers are read
    (searched for below, kept in memory only), then their clear values are crypto-shredded
    (data keys destroyed, vault records deleted: committed on their own, so a request that
    fails later has still made their clear values unreadable, and is run again to finish).
    With ``files``, their lines leave the landing files and exports
    (:func:`seg_pipeline.privacy.files.erase_from_files`, also kept when a later step fails).
    With ``purge_models``, the model artifacts that keep training rows lose theirs
    (:func:`seg_pipeline.segmentation.model.erase_training_rows`; the replaced artifact files
    are deleted after the commit).
    Then one warehouse transaction deletes their rows and commits only when verification
    finds nothing left: in the warehouse, the vault, or any file under ``files``' roots.

    Raises :class:`ErasureError` when the request names no customer the CRM delivered
    (nothing changes) or verification finds an identifier left (the warehouse is rolled back).
    """
    request_id = request_id or uuid.uuid4().hex
    started = now or datetime.now(UTC).replace(tzinfo=None)
    run_sql(conn, "privacy/create_erasure_tables")
    ids = resolve_customers(conn, customer_ids, emails, customer_keys, email_hashes)
    if not ids:
        asked = len(customer_ids) + len(emails) + len(customer_keys) + len(email_hashes)
        raise ErasureError(
            f"request {request_id}: none of its {asked} id(s), key(s) and address(es) is "
            "a customer the CRM delivered; nothing was erased"
        )
    identifiers = customer_identifiers(conn, ids)
    rows: dict[str, int] = {}
    if vault is not None:
        identifiers = pl.concat([identifiers, _clear_contacts(vault, ids)])
        rows["vault.data_keys"] = vault.destroy_data_keys(ids)
        rows["vault.records"] = vault.delete_customer_records(ids)
    values = search_values(identifiers)
    stale: list[Path] = []
    with transaction(conn):
        if purge_models is not None:
            purged, stale = purge_models(conn, ids)
            rows |= {f"model {version}": n for version, n in purged.items()}
        rows |= delete_rows(conn, [t for t in tables if t not in LEDGER_TABLES], identifiers)
        remaining = find_identifiers(conn, identifiers)
        rewritten = FileErasure({}, [])
        if files is not None:
            rewritten = erase_from_files(files, values, request_id)
            _update_export_rows(conn, rewritten.exports)
            remaining += find_in_files(files, values)
        if vault is not None:
            remaining += _left_in_vault(vault, ids)
        if remaining:
            where = ", ".join(f"{t}.{c} ({n} rows)" if c else f"{t} ({n})" for t, c, n in remaining)
            raise ErasureError(
                f"request {request_id}: identifiers of the customers are still in {where}; "
                "the erasure was rolled back"
            )
        _record(conn, request_id, ids, rows, rewritten.rows_by_file, started)
    conn.execute("CHECKPOINT")
    for path in stale:
        path.unlink(missing_ok=True)
    return ErasureReport(request_id, len(ids), rows, rewritten.rows_by_file, remaining)


def _clear_contacts(vault: VaultSession, customer_ids: Sequence[str]) -> pl.DataFrame:
    """The clear e-mail addresses and phone numbers the vault holds for ``customer_ids`` (none
    for a customer whose key is already gone): (kind, value) rows. Names and birth dates are
    not searched for: as tokens they match other people's text."""
    found = []
    for customer in customer_ids:
        try:
            records = vault.read_customer(customer)
        except CustomerErased:
            continue
        for kind in CLEAR_CONTACT_FIELDS:
            found += [(kind, v) for v in records[kind].drop_nulls().unique().to_list() if v]
    return pl.DataFrame(found, schema={"kind": pl.String, "value": pl.String}, orient="row")


def _update_export_rows(conn: duckdb.DuckDBPyConnection, exports: list[dict[str, object]]) -> None:
    """``campaign_exports`` rows of rewritten export files: their new row count and hash."""
    if not exports or not table_exists(conn, "campaign_exports"):
        return
    frame = pl.DataFrame(
        exports, schema={"file": pl.String, "row_count": pl.Int64, "sha256": pl.String}
    )
    with registered(conn, "_rewritten_exports", frame):
        run_sql(conn, "privacy/update_export_files")


def _left_in_vault(vault: VaultSession, customer_ids: Sequence[str]) -> list[tuple[str, str, int]]:
    """What the vault still holds of ``customer_ids``: data keys, and records (read even
    without a key: a record whose key is gone is unreadable but still there)."""
    left = []
    if keys := vault.data_keys(customer_ids):
        left.append(("vault key store", "customer_id", len(keys)))
    records = sum(_vault_records(vault, c) for c in customer_ids)
    if records:
        left.append(("vault", "customer_id", records))
    return left


def _vault_records(vault: VaultSession, customer_id: str) -> int:
    try:
        return vault.read_customer(customer_id).height
    except CustomerErased:
        return 1


def _record(
    conn: duckdb.DuckDBPyConnection,
    request_id: str,
    customer_ids: Sequence[str],
    rows: dict[str, int],
    rows_by_file: dict[str, int],
    started: datetime,
) -> None:
    """The tombstones and audit rows of a verified request."""
    ids = pl.DataFrame({"customer_id": list(customer_ids)}, schema={"customer_id": pl.String})
    with registered(conn, "_erase_ids", ids):
        run_sql(conn, "privacy/record_erasure", {"request_id": request_id})
        run_sql(
            conn,
            "privacy/record_erasure_audit",
            {
                "request_id": request_id,
                "requested_at": started,
                "completed_at": datetime.now(UTC).replace(tzinfo=None),
                "rows_deleted": sum(rows.values()),
                "tables": json.dumps({t: n for t, n in rows.items() if n}, sort_keys=True),
                "files": json.dumps(rows_by_file, sort_keys=True),
            },
        )


def drop_erased_rows(
    conn: duckdb.DuckDBPyConnection, raw_table: str, start: date, end: date
) -> int:
    """Delete the rows of erased customers (``erased_customers``) from ``raw_table``'s
    partitions [start, end]: every load applies the tombstones, so a re-delivered file or a
    backfill does not bring an erased customer back. Returns the rows dropped."""
    # Most days nobody was ever erased: skip hashing every distinct id of the window.
    if (
        not table_exists(conn, "erased_customers")
        or not conn.execute("SELECT count(*) FROM erased_customers").fetchall()[0][0]
    ):
        return 0
    sql = read_sql("privacy/erased_ids_in_window")
    params = {"raw_table": raw_table, "start_date": start, "end_date": end}
    (count,) = conn.execute(
        f"DELETE FROM {_quoted(raw_table)} WHERE _partition_date BETWEEN $start_date AND "
        f"$end_date AND trim(customer_id) IN ({sql})",
        params,
    ).fetchall()[0]
    return int(count)
