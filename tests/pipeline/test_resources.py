"""The warehouse resource: keyed hashing, atomic window replacement, connections that close."""

from __future__ import annotations

import hashlib
import hmac
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest

from seg_pipeline.resources import Warehouse, WarehouseError, replace_window, transaction

D1, D2, D3 = date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 3)


@pytest.mark.parametrize("key", ["short", "k" * 64, "a much longer key " * 8])
@pytest.mark.parametrize("value", ["anna@example.com", "Zoë Ünïcødé", ""])
def test_pseudonymize_is_hmac_sha256(tmp_path: Path, key: str, value: str) -> None:
    warehouse = Warehouse(database=str(tmp_path / "w.duckdb"), pseudonymisation_key=key)
    with warehouse.connection() as conn:
        got = conn.execute("SELECT pseudonymize($v)", {"v": value}).fetchone()[0]
        assert conn.execute("SELECT pseudonymize(NULL)").fetchone()[0] is None
    assert got == hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()


def test_key_is_not_stored_in_the_database_file(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    with Warehouse(database=str(path), pseudonymisation_key="secret-key-xyz").connection() as c:
        c.execute("CREATE TABLE t AS SELECT pseudonymize('x') AS h")
    assert b"secret-key-xyz" not in path.read_bytes()
    with duckdb.connect(str(path)) as conn, pytest.raises(duckdb.CatalogException):
        conn.execute("SELECT pseudonymize('x')")


def test_missing_key_fails_loudly_instead_of_hashing_without_one(tmp_path: Path) -> None:
    warehouse = Warehouse(database=str(tmp_path / "w.duckdb"))
    expected = pytest.raises(duckdb.Error, match="SEG_PSEUDONYMISATION_KEY is not set")
    with warehouse.connection() as conn, expected:
        conn.execute("SELECT pseudonymize('a@b.com')").fetchone()


def _seed(conn: duckdb.DuckDBPyConnection) -> None:
    with transaction(conn):
        replace_window(
            conn,
            "t",
            "SELECT * FROM (VALUES (DATE '2026-01-01', 1), (DATE '2026-01-02', 2)) v(d, x)",
            {},
            "d",
            D1,
            D2,
        )


def test_replace_window_replaces_only_its_days(tmp_path: Path) -> None:
    with Warehouse(database=str(tmp_path / "w.duckdb")).connection() as conn:
        _seed(conn)
        with transaction(conn):
            written = replace_window(
                conn, "t", "SELECT $d::DATE AS d, 20 AS x", {"d": D2}, "d", D2, D2
            )
        assert written == 1
        assert conn.execute("SELECT d, x FROM t ORDER BY d").fetchall() == [(D1, 1), (D2, 20)]


def test_failed_window_rolls_back_and_names_the_problem(tmp_path: Path) -> None:
    with Warehouse(database=str(tmp_path / "w.duckdb")).connection() as conn:
        _seed(conn)
        with pytest.raises(WarehouseError, match="outside the partition window"), transaction(conn):
            replace_window(conn, "t", "SELECT DATE '2026-01-03' AS d, 3 AS x", {}, "d", D2, D2)
        with pytest.raises(WarehouseError, match=r"columns \['d', 'y'\] differ"), transaction(conn):
            replace_window(conn, "t", "SELECT DATE '2026-01-02' AS d, 3 AS y", {}, "d", D2, D2)
        assert conn.execute("SELECT d, x FROM t ORDER BY d").fetchall() == [(D1, 1), (D2, 2)]


def test_connection_is_closed_even_when_the_body_raises(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    warehouse = Warehouse(database=str(path))
    with pytest.raises(RuntimeError), warehouse.connection():
        raise RuntimeError("boom")
    # Another process can now take the write lock: no connection was left open here.
    code = f"import duckdb; duckdb.connect({str(path)!r}).execute('CREATE TABLE z(i INT)')"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
