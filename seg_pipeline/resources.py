"""Dagster resources: the warehouse every query goes through, and the landing zone.

The warehouse is the only place that opens DuckDB: assets get a connection from it, run the SQL
files of ``sql/`` with bound parameters and replace windows of partitions in one transaction;
nothing else calls ``duckdb.connect``. The plain functions of the stages take that DuckDB
connection today; a Spark mode would need a connection-like session with the same few
operations (``execute``/``sql`` with named parameters, ``register`` of a frame) and the
DuckDB-only SQL listed in ARCHITECTURE.md rewritten.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
from dagster import ConfigurableResource, get_dagster_logger
from dagster_duckdb import DuckDBResource
from pydantic import Field

from seg_pipeline.names import path_under, sql_identifier
from seg_pipeline.ops.recovery import fail_dead_runs_from_this_run
from seg_pipeline.settings import PSEUDONYMISATION_KEY_ENV, SQL_DIR
from seg_pipeline.sources import Source
from seg_pipeline.warehouse_lock import (
    DEFAULT_LOCK_TIMEOUT_SECONDS,
    LOCK_TIMEOUT_ENV,
    Holder,
    WarehouseLockTimeout,
    hold_warehouse,
)


class WarehouseError(RuntimeError):
    """A warehouse operation could not be done; the message says what and where."""


def read_sql(name: str) -> str:
    """The text of ``sql/<name>.sql`` (``name`` like ``staging/stg_orders``): only files of
    ``sql/``."""
    path = path_under(SQL_DIR, f"{name}.sql", what="SQL file")
    if not path.exists():
        raise WarehouseError(f"SQL file not found: {path}")
    return path.read_text(encoding="utf-8")


def _blob_literal(data: bytes) -> str:
    return "'" + "".join(f"\\x{b:02x}" for b in data) + "'::BLOB"


class Warehouse(DuckDBResource):
    """The DuckDB warehouse file, with the helpers every asset uses.

    A dagster-duckdb resource whose connections take the warehouse's OS lock first (one
    holder at a time across processes, freed by the kernel when the holder dies, waited for
    at most ``lock_timeout_seconds``), always close, use UTC, and carry the keyed
    ``pseudonymize(text)`` SQL function; with helpers for SQL files with bound parameters and
    atomic replacement of a window of daily partitions.
    """

    pseudonymisation_key: str = Field(
        default="",
        description=(
            "Secret key of the keyed hash applied to personal data; set "
            f"{PSEUDONYMISATION_KEY_ENV}. "
            "Never stored in the repository."
        ),
    )

    lock_timeout_seconds: float = Field(
        default=DEFAULT_LOCK_TIMEOUT_SECONDS,
        ge=0,
        description=(
            "How long a connection waits for the warehouse while another process holds it "
            "before it gives up with an error naming the holder (definitions read "
            f"{LOCK_TIMEOUT_ENV}). A killed holder frees the warehouse at once."
        ),
    )

    @contextmanager
    def connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection to the warehouse, closed on exit even when the body raises.

        One process at a time holds the warehouse file (``warehouse_lock.hold_warehouse``: an OS
        lock that the kernel frees when its holder dies, however it dies). A busy warehouse is
        waited for, without polling and with a message naming the holder, for at most
        ``lock_timeout_seconds``; then this raises :class:`WarehouseError` naming the holder.
        The first connection of a Dagster run also marks runs whose process is gone as failed
        and frees their slots (``ops/recovery.py``).
        """
        log = get_dagster_logger()
        timeout = self.lock_timeout_seconds
        deadline = time.monotonic() + timeout

        def on_wait(holder: Holder | None, waited: float) -> None:
            who = holder.describe() if holder else "another process"
            log.warning(
                f"Waiting for the warehouse {self.database}: held by {who}; "
                f"waited {waited:.0f} s of at most {timeout:g} s (lock_timeout_seconds)."
            )

        stale: list[Holder] = []

        def on_stale(holder: Holder) -> None:
            log.warning(
                f"The previous holder of the warehouse, {holder.describe()}, ended without "
                "letting go of it (killed?); DuckDB rolls back its unfinished transaction."
            )
            stale.append(holder)

        with ExitStack() as held:
            if self.database != ":memory:":
                Path(self.database).parent.mkdir(parents=True, exist_ok=True)
                try:
                    held.enter_context(hold_warehouse(self.database, timeout, on_wait, on_stale))
                except WarehouseLockTimeout as exc:
                    raise WarehouseError(str(exc)) from exc
                fail_dead_runs_from_this_run(log, again=bool(stale))
            # Retry while a DuckDB client outside the lock (e.g. the duckdb CLI) holds the file.
            config = {"custom_user_agent": "dagster", **self.connection_config}
            delay = 0.1
            while True:
                try:
                    conn = duckdb.connect(self.database, read_only=False, config=config)
                    break
                except duckdb.IOException as exc:
                    if "lock" not in str(exc).lower():
                        raise
                    if time.monotonic() >= deadline:
                        pid = re.search(r"\(PID (\d+)\)", str(exc))
                        raise WarehouseError(
                            f"Gave up waiting for the warehouse {self.database} after "
                            f"{timeout:g} s: a DuckDB client outside seg-pipeline"
                            f"{f' (pid {pid.group(1)})' if pid else ''} holds it. To wait "
                            "longer, raise lock_timeout_seconds of the warehouse resource."
                        ) from exc
                    time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
                    delay = min(delay * 2, 2.0)
                except duckdb.Error as exc:  # a malformed setting: name it (no secret is one)
                    raise WarehouseError(
                        f"Cannot open the warehouse {self.database} with the DuckDB settings "
                        f"{self.connection_config} (SEG_DUCKDB_*): {exc}"
                    ) from exc
            try:
                conn.execute("SET TimeZone = 'UTC'")
                self._register_functions(conn)
                run_sql(conn, "ingest/utc_timestamp")
                yield conn
            finally:
                conn.close()

    @contextmanager
    def read_only_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection that waits for nobody, closed on exit (for sensors, which
        must not hold up a run).

        It takes no warehouse lock: DuckDB lets readers share the file only while no process
        writes it, so while a run writes, opening fails at once with ``duckdb.IOException``
        ("Could not set lock"); the caller tries again later (a sensor skips its tick). No
        ``pseudonymize`` macro: a reader has no use for the key.
        """
        conn = duckdb.connect(self.database, read_only=True, config=dict(self.connection_config))
        try:
            conn.execute("SET TimeZone = 'UTC'")
            yield conn
        finally:
            conn.close()

    def _register_functions(self, conn: duckdb.DuckDBPyConnection) -> None:
        """Define ``pseudonymize(text)``: HMAC-SHA256 (RFC 2104) in plain SQL, hex-encoded.
        (The other macro every connection has, ``utc_timestamp``, is the SQL file
        ``sql/ingest/utc_timestamp.sql``.)

        Written with ``sha256``/``unhex`` over blobs instead of a Python UDF: about ten times
        faster, vectorised, and expressible the same way in Spark SQL. The key lives only in
        this connection's temporary macro, never in the database file.
        """
        key = self.pseudonymisation_key.encode("utf-8")
        if not key:
            body = f"error('{PSEUDONYMISATION_KEY_ENV} is not set: cannot pseudonymise')"
        else:
            block = key if len(key) <= 64 else hashlib.sha256(key).digest()
            block = block.ljust(64, b"\0")
            inner = _blob_literal(bytes(b ^ 0x36 for b in block))
            outer = _blob_literal(bytes(b ^ 0x5C for b in block))
            body = f"sha256({outer} || unhex(sha256({inner} || encode(x))))"
        conn.execute(
            f"CREATE OR REPLACE TEMP MACRO pseudonymize(x) AS "
            f"CASE WHEN x IS NULL THEN NULL ELSE {body} END"
        )

    # -- reading ---------------------------------------------------------------------------

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> pl.DataFrame:
        """Run one statement and return its result as a polars frame."""
        with self.connection() as conn:
            return query_frame(conn, sql, params)


def bind_params(sql: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The subset of ``params`` that ``sql`` names as ``$name`` (DuckDB rejects extras)."""
    names = set(re.findall(r"\$([A-Za-z_][A-Za-z0-9_]*)", sql))
    missing = names - params.keys()
    if missing:
        raise KeyError(f"SQL needs parameters it was not given: {sorted(missing)}")
    return {k: v for k, v in params.items() if k in names}


def query_frame(
    conn: duckdb.DuckDBPyConnection,
    sql: str,
    params: Mapping[str, Any] | Sequence[Any] | None = None,
) -> pl.DataFrame:
    """Result of ``sql`` with bound ``params`` (named ``$x`` or positional ``?``) as a polars
    frame."""
    bound = list(params) if isinstance(params, list | tuple) else dict(params or {})
    return conn.sql(sql, params=bound).pl()


def run_sql(
    conn: duckdb.DuckDBPyConnection, name: str, params: Mapping[str, Any] | None = None
) -> duckdb.DuckDBPyConnection:
    """Execute ``sql/<name>.sql`` with the subset of ``params`` it names; returns the cursor."""
    sql = read_sql(name)
    return conn.execute(sql, bind_params(sql, params or {}))


def table_columns(conn: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    """Column -> DuckDB type of ``table``, in table order."""
    sql_identifier(table, "table")
    return {r[0]: str(r[1]) for r in conn.execute(f"DESCRIBE {table}").fetchall()}


def drop_tables(conn: duckdb.DuckDBPyConnection, *tables: str) -> None:
    """Drop the (temporary) tables that exist among ``tables``."""
    for table in tables:
        conn.execute(f"DROP TABLE IF EXISTS {sql_identifier(table, 'table')}")


def table_exists(conn: duckdb.DuckDBPyConnection, table: str) -> bool:
    schema, _, name = table.rpartition(".")
    # fetchall, not fetchone: DuckDB 2.0 keeps a half-read result open on the connection.
    rows = conn.execute(
        "select count(*) from information_schema.tables "
        "where table_schema = $schema and table_name = $name",
        {"schema": schema or "main", "name": name},
    ).fetchall()
    return bool(rows and rows[0][0])


@contextmanager
def transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN ... COMMIT, rolled back if the body raises: a window is replaced whole or not at
    all."""
    conn.execute("BEGIN TRANSACTION")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def replace_window(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    select_sql: str,
    params: Mapping[str, Any],
    partition_column: str,
    start: date,
    end: date,
) -> int:
    """Replace the rows of ``table`` whose ``partition_column`` lies in [start, end].

    ``select_sql`` computes the new rows (with bound ``params``). Must run inside
    :func:`transaction`. The table is created from the query's columns on first use; if the
    query's columns no longer match the table's, this fails with both column lists rather than
    silently writing a different shape, and a computed row outside the window fails the
    statement (the caller's transaction rolls back). The rows stream from the query into the
    table after the window's old rows are deleted (no copy of the window is held on the side),
    so the query must not read the window of the table it replaces (earlier days it may).
    Returns the number of rows written. ``table`` and ``partition_column`` must be plain SQL
    names (:func:`seg_pipeline.names.sql_identifier`): they are the only text put into the
    statements besides ``select_sql``, a file of ``sql/`` or a registered frame.
    """
    sql_identifier(table, "table")
    sql_identifier(partition_column, f"{table}: partition column")
    probe = conn.execute(f"SELECT * FROM ({select_sql}) LIMIT 0", dict(params))
    incoming = [d[0] for d in probe.description]
    probe.fetchall()
    if not table_exists(conn, table):
        conn.execute(f"CREATE TABLE {table} AS SELECT * FROM ({select_sql}) LIMIT 0", dict(params))
    existing = list(table_columns(conn, table))
    if existing != incoming:
        raise WarehouseError(
            f"{table}: the query's columns {incoming} differ from the table's {existing}; "
            f"drop {table} and re-materialize all its partitions to change its shape"
        )
    window = {**params, "window_first_day": start, "window_last_day": end}
    conn.execute(
        f"DELETE FROM {table} WHERE {partition_column} "
        "BETWEEN $window_first_day AND $window_last_day",
        {"window_first_day": start, "window_last_day": end},
    )
    outside = (
        f"error('{table}: a computed row falls outside the partition window {start}..{end}: "
        f"{partition_column} = ' || coalesce({partition_column}::VARCHAR, 'NULL'))"
    )
    try:
        (written,) = conn.execute(
            f"INSERT INTO {table} SELECT * REPLACE (CASE WHEN {partition_column} "
            f"BETWEEN $window_first_day AND $window_last_day THEN {partition_column} "
            f"ELSE {outside} END AS {partition_column}) FROM ({select_sql})",
            window,
        ).fetchall()[0]
    except duckdb.InvalidInputException as exc:
        if "falls outside the partition window" not in str(exc):
            raise
        raise WarehouseError(str(exc).removeprefix("Invalid Input Error: ")) from exc
    return int(written)


@contextmanager
def registered(conn: duckdb.DuckDBPyConnection, name: str, frame: pl.DataFrame) -> Iterator[str]:
    """``frame`` visible to SQL as ``name`` for the duration of the block."""
    conn.register(sql_identifier(name, "registered frame"), frame)
    try:
        yield name
    finally:
        conn.unregister(name)


def write_frame(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    frame: pl.DataFrame,
    partition_column: str,
    day: date,
) -> int:
    """Replace ``table``'s partition ``day`` with ``frame`` (inside :func:`transaction`)."""
    with registered(conn, "_partition_rows", frame) as view:
        return replace_window(conn, table, f"SELECT * FROM {view}", {}, partition_column, day, day)


class LandingZone(ConfigurableResource):
    """The folder where source systems drop their daily files."""

    landing_dir: str = Field(description="Root folder: <landing_dir>/<source>/<YYYY-MM-DD>.<ext>")

    def path_for(self, source: Source, day: date) -> Path:
        """``<landing_dir>/<source>/<YYYY-MM-DD>.<ext>``, always inside ``landing_dir``."""
        return source.path_for(self.landing_dir, day)
