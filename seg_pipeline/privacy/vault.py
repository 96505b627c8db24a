"""The vault: the one place clear personal values exist, each customer's sealed with a key of
their own so that destroying that key erases them everywhere (crypto-shredding).

Two DuckDB files beside each other, owner-only (folder 0700, files 0600):

- the vault, ``SEG_VAULT`` (``<data dir>/vault/vault.duckdb``): per CRM record the personal
  values (email, phone, first and last name, birth date) as one AES-GCM ciphertext under the
  customer's data key, with the customer id, the record's lineage (arrival day, file, record
  number), ``updated_at`` and the keyed hashes the main warehouse carries;
- the key store, ``<vault>.keys.duckdb``: per customer one random 256-bit data key, wrapped
  (AES-GCM) with the key-encryption key ``SEG_VAULT_KEY``, which lives only in the
  environment. Back it up apart from the values, with short retention or not at all: a
  restored copy of the values is unreadable for every customer whose key was destroyed since,
  because the keys are not in it.

Both files are attached to a connection of the main warehouse (``Vault.attached``), so they
share its OS lock and the warehouse stays the only place that opens DuckDB; each vault write
is its own transaction on a cursor of that connection (DuckDB writes one attached database per
transaction). Only the CRM load and the delivery export attach the vault.

Data keys are drawn from the operating system (``os.urandom``), never from a seed: the one
exception to "every random step takes a seed from config", since a reproducible key is a
known key. Nonces are fresh per encryption (96 bits). Associated data binds each wrapped key
to its customer and each ciphertext to its customer and record, so neither can be moved to
another row without failing authentication.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import stat
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from dagster import ConfigurableResource
from pydantic import Field

from seg_pipeline.resources import query_frame, read_sql, registered, run_sql, transaction
from seg_pipeline.settings import VAULT_KEY_ENV

VAULT_ALIAS = "vault"
KEYS_ALIAS = "vault_keys"
PERSONAL_FIELDS = ("email", "phone", "first_name", "last_name", "birth_date")
KEY_BYTES = 32
NONCE_BYTES = 12
_WRAP_CONTEXT = b"seg-vault/data-key/v1\x1f"
_SEAL_CONTEXT = b"seg-vault/crm-record/v1\x1f"


class VaultKeyError(ValueError):
    """The key-encryption key is missing, malformed or not the one the key store was made
    with. The message names the variable, never its value."""


class CustomerErased(LookupError):
    """The customer's data key was destroyed: their personal values cannot be read, in the
    vault or in any copy of it."""


def parse_key_encryption_key(text: str | None) -> bytes:
    """The 32-byte key-encryption key from its text form: 64 hex digits or base64."""
    value = (text or "").strip()
    if not value:
        raise VaultKeyError(
            f"{VAULT_KEY_ENV} is not set: the vault cannot seal or read personal data "
            "(make creates a random key in $SEG_DATA_DIR/.vault_key)"
        )
    key: bytes | None = None
    if len(value) == 2 * KEY_BYTES:
        with suppress(ValueError):
            key = bytes.fromhex(value)
    if key is None:
        with suppress(binascii.Error, ValueError):
            key = base64.b64decode(value, validate=True)
    if key is None or len(key) != KEY_BYTES:
        raise VaultKeyError(
            f"{VAULT_KEY_ENV} is malformed: it must be {KEY_BYTES} bytes as 64 hex digits or "
            "base64 (its value is not shown)"
        )
    return key


def new_data_key() -> bytes:
    """A random 256-bit data key (from the operating system: never seeded)."""
    return os.urandom(KEY_BYTES)


def wrap_data_key(kek: bytes, customer_id: str, data_key: bytes) -> bytes:
    """``data_key`` sealed with the key-encryption key, bound to ``customer_id``."""
    nonce = os.urandom(NONCE_BYTES)
    aad = _WRAP_CONTEXT + customer_id.encode("utf-8")
    return nonce + AESGCM(kek).encrypt(nonce, data_key, aad)


def unwrap_data_key(kek: bytes, customer_id: str, wrapped: bytes) -> bytes:
    aad = _WRAP_CONTEXT + customer_id.encode("utf-8")
    try:
        return AESGCM(kek).decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], aad)
    except InvalidTag as exc:
        raise VaultKeyError(
            f"{VAULT_KEY_ENV} does not open the key store's data keys: it is not the "
            "key-encryption key they were wrapped with, or the key store was altered"
        ) from exc


def record_aad(customer_id: str, arrival_date: date, source_file: str, record_number: int) -> bytes:
    """Associated data of a sealed record: its customer and lineage."""
    parts = (customer_id, arrival_date.isoformat(), source_file, str(record_number))
    return _SEAL_CONTEXT + "\x1f".join(parts).encode("utf-8")


def seal_values(data_key: bytes, aad: bytes, values: dict[str, str | None]) -> bytes:
    """The personal ``values`` of one record as nonce || ciphertext || tag."""
    nonce = os.urandom(NONCE_BYTES)
    plain = json.dumps(values, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return nonce + AESGCM(data_key).encrypt(nonce, plain, aad)


def open_values(data_key: bytes, aad: bytes, sealed: bytes) -> dict[str, str | None]:
    """The values :func:`seal_values` sealed; ``InvalidTag`` if key, record or bytes differ."""
    plain = AESGCM(data_key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
    return json.loads(plain)


def keys_path_for(vault_path: Path | str) -> Path:
    """The key store beside the vault file: ``<vault stem>.keys.duckdb``."""
    path = Path(vault_path)
    return path.with_name(f"{path.stem}.keys.duckdb")


@contextmanager
def owner_only_files() -> Iterator[None]:
    """Files created in the block (DuckDB's database and WAL files) get mode 0600."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


def _owner_only(path: Path) -> None:
    if path.exists():
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)


class Vault(ConfigurableResource):
    """The vault and its key store (see the module docstring); attach to a warehouse
    connection with :meth:`attached`."""

    path: str = Field(description="The vault's DuckDB file (SEG_VAULT); the key store is beside")
    key_encryption_key: str = Field(
        default="",
        description=f"Wraps the customers' data keys; set {VAULT_KEY_ENV} (32 bytes, hex or "
        "base64). Never stored in the repository or a database.",
    )

    @property
    def keys_path(self) -> Path:
        return keys_path_for(self.path)

    @contextmanager
    def attached(self, conn: duckdb.DuckDBPyConnection) -> Iterator[VaultSession]:
        """The vault and key store attached to ``conn`` (a warehouse connection) for the
        block, created owner-only if new; detached on exit."""
        kek = parse_key_encryption_key(self.key_encryption_key)
        vault_path = Path(self.path)
        with owner_only_files():
            vault_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        vault_path.parent.chmod(stat.S_IRWXU)
        cursor = conn.cursor()
        session = VaultSession(cursor, kek, vault_path, self.keys_path)
        try:
            session.attach()
            yield session
        finally:
            session.detach()
            cursor.close()


@dataclass
class VaultSession:
    """The attached vault: seal, read and erase personal values (plain methods over a
    cursor of the warehouse connection; each write is one transaction)."""

    cursor: duckdb.DuckDBPyConnection
    kek: bytes
    vault_path: Path
    keys_path: Path

    # -- attaching -------------------------------------------------------------------------

    def attach(self) -> None:
        with owner_only_files():
            self.cursor.execute(f"ATTACH '{self.vault_path}' AS {VAULT_ALIAS}")
            self.cursor.execute(f"ATTACH '{self.keys_path}' AS {KEYS_ALIAS}")
            run_sql(self.cursor, "privacy/create_vault_tables")
            run_sql(self.cursor, "privacy/create_key_store")
        self._protect()

    def detach(self) -> None:
        for alias in (VAULT_ALIAS, KEYS_ALIAS):
            self.cursor.execute(f"DETACH DATABASE IF EXISTS {alias}")
        self._protect()

    def _protect(self) -> None:
        for path in (self.vault_path, self.keys_path):
            _owner_only(path)
            _owner_only(Path(f"{path}.wal"))

    def _write(self, name: str, params: dict[str, object] | None = None) -> int:
        with owner_only_files(), transaction(self.cursor):
            rows = run_sql(self.cursor, name, params).fetchall()
        return int(rows[0][0]) if rows and rows[0] else 0

    # -- data keys -------------------------------------------------------------------------

    def _wrapped_keys(self, customer_ids: Iterable[str]) -> dict[str, bytes]:
        wanted = _customers(customer_ids)
        with registered(self.cursor, "_wanted_customers", wanted):
            found = query_frame(self.cursor, read_sql("privacy/wrapped_keys"))
        return dict(zip(found["customer_id"], found["wrapped_key"], strict=True))

    def data_keys(self, customer_ids: Iterable[str], create: bool = False) -> dict[str, bytes]:
        """The data keys of ``customer_ids`` that exist (with ``create``: a new random key for
        each customer without one, stored wrapped first). An erased customer gets a new key
        only when new records of theirs arrive."""
        ids = sorted(set(customer_ids))
        wrapped = self._wrapped_keys(ids)
        missing = [c for c in ids if c not in wrapped]
        if create and missing:
            new = {c: wrap_data_key(self.kek, c, new_data_key()) for c in missing}
            frame = pl.DataFrame(
                {"customer_id": list(new), "wrapped_key": list(new.values())},
                schema={"customer_id": pl.String, "wrapped_key": pl.Binary},
            )
            with registered(self.cursor, "_new_keys", frame):
                self._write("privacy/insert_data_keys")
            # Read back: a key another writer stored first is the one that counts.
            wrapped = self._wrapped_keys(ids)
        return {c: unwrap_data_key(self.kek, c, w) for c, w in wrapped.items()}

    def destroy_data_keys(self, customer_ids: Iterable[str]) -> int:
        """Crypto-shred ``customer_ids``: their data keys are deleted and the key store is
        rewritten into a new file (so no destroyed key survives in its free blocks); every
        sealed value of theirs, in the vault or any copy of it, is unreadable from now on.
        Returns the number of keys destroyed."""
        wanted = _customers(customer_ids)
        with registered(self.cursor, "_wanted_customers", wanted):
            destroyed = self._write("privacy/destroy_data_keys")
        self._rewrite_key_store()
        return destroyed

    def destroy_data_key(self, customer_id: str) -> bool:
        """:meth:`destroy_data_keys` for one customer; whether a key existed."""
        return self.destroy_data_keys([customer_id]) == 1

    def _rewrite_key_store(self) -> None:
        fresh = self.keys_path.with_name(f"{self.keys_path.name}.rewrite")
        for leftover in (fresh, Path(f"{fresh}.wal")):
            leftover.unlink(missing_ok=True)
        self.cursor.execute(f"DETACH {KEYS_ALIAS}")
        with owner_only_files():
            self.cursor.execute(f"ATTACH '{self.keys_path}' AS {KEYS_ALIAS}_old (READ_ONLY)")
            self.cursor.execute(f"ATTACH '{fresh}' AS {KEYS_ALIAS}")
            run_sql(self.cursor, "privacy/create_key_store")
            self._write("privacy/copy_data_keys")
            self.cursor.execute(f"DETACH {KEYS_ALIAS}")
            self.cursor.execute(f"DETACH {KEYS_ALIAS}_old")
        Path(f"{self.keys_path}.wal").unlink(missing_ok=True)  # the old file's, if any
        os.replace(fresh, self.keys_path)
        with owner_only_files():
            self.cursor.execute(f"ATTACH '{self.keys_path}' AS {KEYS_ALIAS}")
        self._protect()

    # -- records ---------------------------------------------------------------------------

    def store_crm_records(self, records: pl.DataFrame, start: date, end: date) -> int:
        """Replace the vault records of arrival days [start, end] with ``records`` (customer_id,
        arrival_date, source_file, record_number, updated_at, the keyed hashes and the clear
        :data:`PERSONAL_FIELDS`), each sealed with its customer's data key (created for new
        customers). Returns the number of records stored."""
        keys = self.data_keys(records["customer_id"].unique().to_list(), create=True)
        sealed = [
            seal_values(
                keys[r["customer_id"]],
                record_aad(
                    r["customer_id"], r["arrival_date"], r["source_file"], r["record_number"]
                ),
                {f: r[f] for f in PERSONAL_FIELDS},
            )
            for r in records.iter_rows(named=True)
        ]
        frame = records.drop(PERSONAL_FIELDS).with_columns(
            pl.Series("sealed", sealed, dtype=pl.Binary)
        )
        with (
            owner_only_files(),
            registered(self.cursor, "_sealed_records", frame),
            transaction(self.cursor),
        ):
            run_sql(self.cursor, "privacy/delete_day", {"start_date": start, "end_date": end})
            run_sql(self.cursor, "privacy/insert_records")
        return frame.height

    def read_records(self, lineage: pl.DataFrame) -> pl.DataFrame:
        """The clear values of the records named by ``lineage`` (arrival_date, source_file,
        record_number): one row per record found, with customer_id, the lineage, the
        :data:`PERSONAL_FIELDS` and ``is_erased`` (true, values null, when the customer's
        data key was destroyed)."""
        wanted = lineage.select("arrival_date", "source_file", "record_number").unique()
        with registered(self.cursor, "_wanted_records", wanted):
            found = query_frame(self.cursor, read_sql("privacy/records_by_lineage"))
        return self._open(found)

    def read_customer(self, customer_id: str) -> pl.DataFrame:
        """Every record of one customer in clear (lineage and :data:`PERSONAL_FIELDS`).

        Raises
        ------
        CustomerErased
            If the customer's data key was destroyed.
        """
        with registered(self.cursor, "_wanted_customers", _customers([customer_id])):
            lineage = query_frame(self.cursor, read_sql("privacy/customer_records"))
        opened = self.read_records(lineage)
        if opened["is_erased"].any():
            raise CustomerErased(
                f"customer {customer_id}: data key destroyed, personal values erased"
            )
        return opened.drop("is_erased")

    def _open(self, found: pl.DataFrame) -> pl.DataFrame:
        rows = []
        data_keys: dict[str, bytes] = {}
        for r in found.iter_rows(named=True):
            customer = r["customer_id"]
            values: dict[str, str | None] = dict.fromkeys(PERSONAL_FIELDS)
            erased = r["wrapped_key"] is None
            if not erased:
                if customer not in data_keys:
                    data_keys[customer] = unwrap_data_key(self.kek, customer, r["wrapped_key"])
                aad = record_aad(customer, r["arrival_date"], r["source_file"], r["record_number"])
                values = open_values(data_keys[customer], aad, r["sealed"])
            rows.append(
                {
                    "customer_id": customer,
                    "arrival_date": r["arrival_date"],
                    "source_file": r["source_file"],
                    "record_number": r["record_number"],
                    **{f: values.get(f) for f in PERSONAL_FIELDS},
                    "is_erased": erased,
                }
            )
        return pl.DataFrame(rows, schema=RECORD_SCHEMA, orient="row")

    # -- for the erasure job ---------------------------------------------------------------

    def delete_customer_records(self, customer_ids: Iterable[str]) -> int:
        """Delete every vault record of ``customer_ids`` (the live file only: copies keep
        theirs, which :meth:`destroy_data_keys` makes unreadable). Returns rows deleted."""
        wanted = _customers(customer_ids)
        with registered(self.cursor, "_wanted_customers", wanted):
            return self._write("privacy/delete_customer_records")

    def customers_by_email_hash(self, email_hash: str) -> list[str]:
        """The customers whose records carry ``email_hash`` (the warehouse's keyed hash of a
        normalised e-mail address)."""
        found = run_sql(
            self.cursor, "privacy/customers_by_email_hash", {"email_hash": email_hash}
        ).fetchall()
        return [r[0] for r in found]


RECORD_SCHEMA = {
    "customer_id": pl.String,
    "arrival_date": pl.Date,
    "source_file": pl.String,
    "record_number": pl.Int64,
    **dict.fromkeys(PERSONAL_FIELDS, pl.String),
    "is_erased": pl.Boolean,
}


def _customers(customer_ids: Iterable[str]) -> pl.DataFrame:
    return pl.DataFrame(
        {"customer_id": sorted(set(customer_ids))}, schema={"customer_id": pl.String}
    )
