"""The vault: clear personal values only there, sealed per customer; crypto-shredding."""

from __future__ import annotations

import shutil
import stat
from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest
from cryptography.exceptions import InvalidTag

from seg_pipeline.definitions import build_definitions
from seg_pipeline.privacy.vault import (
    PERSONAL_FIELDS,
    CustomerErased,
    Vault,
    VaultKeyError,
    keys_path_for,
)
from seg_pipeline.settings import Settings
from tests.conftest import MONTH_START, TEST_VAULT_KEY, run_range, vault_for
from tests.conftest import warehouse_for as warehouse_of
from tests.helpers import fingerprint, landing_crm_records, landing_record
from tests.quality.minihouse import MiniHouse, crm_row, vault_beside

DAY = date(2026, 1, 3)
OTHER_KEY = "ff" * 32
EMAIL = r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- the month, materialised by Dagster --------------------------------------------------------


def test_vault_files_are_owner_only(loaded_month: Path) -> None:
    vault = loaded_month.parent / "vault" / "vault.duckdb"
    assert _mode(vault.parent) == 0o700
    assert _mode(vault) == 0o600
    assert _mode(keys_path_for(vault)) == 0o600


def test_no_clear_personal_value_anywhere_in_the_main_warehouse(loaded_month: Path, month) -> None:
    """Every text column of every table of the month's warehouse (every asset materialised by
    Dagster), against every personal value the CRM delivered, as delivered and normalised as
    staging normalises them: e-mails, phones and birth dates anywhere; names where a row
    names their customer (a city may be called like someone else)."""
    records = landing_crm_records(month[0].landing_dir)
    distinctive = {
        value
        for r in records
        for value in (
            r["email"].strip(),
            r["email"].strip().lower(),
            r["phone"].strip(),
            "".join(c for c in r["phone"] if c.isdigit() or c == "+"),
            r["birth_date"].strip(),
        )
        if len(value) > 4
    }
    names = pl.DataFrame(
        [
            {"customer_id": r["customer_id"].strip(), "value": value}
            for r in records
            for value in (
                r["first_name"].strip(),
                r["last_name"].strip(),
                f"{r['first_name'].strip()} {r['last_name'].strip()}",
            )
            if value.strip()
        ]
    ).unique()
    with duckdb.connect(str(loaded_month), read_only=True) as conn:
        conn.register("_clear", pl.DataFrame({"value": sorted(distinctive)}))
        conn.register("_names", names)
        columns = conn.execute(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns "
            "WHERE data_type = 'VARCHAR' AND table_catalog = current_database()"
        ).fetchall()
        with_ids = {
            (s, t)
            for s, t, c in conn.execute(
                "SELECT table_schema, table_name, column_name FROM information_schema.columns "
                "WHERE table_catalog = current_database()"
            ).fetchall()
            if c == "customer_id"
        }
        assert len({(s, t) for s, t, _ in columns}) > 20
        found = {}
        for schema, table, column in columns:
            where = f'"{schema}"."{table}" AS t'
            queries = {
                "value": f"SELECT count(*) FROM {where} SEMI JOIN _clear AS c "
                f'ON trim(t."{column}") = c.value',
                "e-mail pattern": f"SELECT count(*) FROM {where} "
                f'WHERE regexp_matches(t."{column}", $pattern)',
            }
            if (schema, table) in with_ids and column != "customer_id":
                queries["own name"] = (
                    f"SELECT count(*) FROM {where} SEMI JOIN _names AS n "
                    f'ON t.customer_id = n.customer_id AND trim(t."{column}") = n.value'
                )
            for kind, sql in queries.items():
                params = {"pattern": EMAIL} if "$pattern" in sql else {}
                hits = conn.execute(sql, params).fetchone()[0]
                if hits:
                    found[f"{table}.{column} ({kind})"] = hits
        assert not found


def test_the_vault_opens_what_the_landing_file_delivered(loaded_settings: Settings) -> None:
    day = MONTH_START + timedelta(days=3)
    with (
        warehouse_of(loaded_settings).connection() as conn,
        vault_for(loaded_settings).attached(conn) as sealed,
    ):
        lineage = conn.sql(
            "SELECT _partition_date AS arrival_date, _source_file AS source_file, "
            "_record_number AS record_number FROM raw_crm_customers "
            "WHERE _partition_date = $d AND nullif(trim(customer_id), '') IS NOT NULL",
            params={"d": day},
        ).pl()
        opened = sealed.read_records(lineage)
    assert opened.height == lineage.height > 0
    assert not opened["is_erased"].any()
    for record in opened.iter_rows(named=True):
        delivered = landing_record(loaded_settings.landing_dir, day, record["record_number"])
        assert delivered["customer_id"].strip() == record["customer_id"]
        assert {f: delivered[f] or None for f in PERSONAL_FIELDS} == {
            f: record[f] for f in PERSONAL_FIELDS
        }


def test_re_running_a_day_gives_the_same_rows_and_no_new_keys(settings: Settings) -> None:
    defs = build_definitions(settings)
    assets = ["raw_crm_customers", "stg_crm_customers"]
    state = []
    for _ in range(2):
        assert run_range(defs, MONTH_START, MONTH_START, assets=assets).success
        with warehouse_of(settings).connection() as conn:
            tables = {t: fingerprint(conn, t) for t in assets}
        with duckdb.connect(str(settings.vault_file), read_only=True) as vault:
            records = vault.execute(
                "SELECT count(*), count(DISTINCT (arrival_date, source_file, record_number)), "
                "sum(hash(customer_id, email_hash, record_number)) FROM crm_personal"
            ).fetchone()
        with duckdb.connect(str(keys_path_for(settings.vault_file)), read_only=True) as keys:
            wrapped = dict(
                keys.execute("SELECT customer_id, wrapped_key FROM data_keys").fetchall()
            )
        state.append((tables, records, wrapped))
    (tables, records, wrapped), (tables_again, records_again, wrapped_again) = state
    assert tables == tables_again
    assert records == records_again and records[0] == records[1] > 0
    assert wrapped == wrapped_again  # the same data keys, not new ones
    assert 0 < len(wrapped) <= records[0]


# -- sealing, erasing and keys, on a few hand-written rows ------------------------------------


@pytest.fixture
def house(tmp_path: Path) -> MiniHouse:
    house = MiniHouse(tmp_path)
    rows = [
        crm_row("C1", DAY, email="one@example.com", first_name="Una"),
        crm_row("C2", DAY, email="two@example.com", first_name="Tove"),
        crm_row("C3", DAY, email="three@example.com", first_name="Thea"),
    ]
    house.run(DAY, crm_customers=rows)
    return house


def test_a_ciphertext_moved_to_another_row_does_not_open(house: MiniHouse) -> None:
    vault = vault_beside(house.warehouse)
    with house.warehouse.connection() as conn, vault.attached(conn) as sealed:
        assert sealed.read_customer("C1")["email"].to_list() == ["one@example.com"]
        sealed.cursor.execute(
            "UPDATE vault.crm_personal SET sealed = (SELECT sealed FROM vault.crm_personal "
            "WHERE customer_id = 'C2') WHERE customer_id = 'C1'"
        )
        with pytest.raises(InvalidTag):
            sealed.read_customer("C1")
        assert sealed.read_customer("C2")["email"].to_list() == ["two@example.com"]


def test_a_destroyed_key_makes_a_restored_backup_unreadable(house: MiniHouse) -> None:
    vault = vault_beside(house.warehouse)
    backup = Path(vault.path).with_name("backup.duckdb")
    shutil.copy(vault.path, backup)  # a backup of the values, taken before the erasure
    with house.warehouse.connection() as conn, vault.attached(conn) as sealed:
        wrapped = sealed._wrapped_keys(["C1"])["C1"]
        assert wrapped in vault.keys_path.read_bytes()
        assert sealed.destroy_data_key("C1")
        assert not sealed.destroy_data_key("C1")  # already gone
        with pytest.raises(CustomerErased, match="C1"):
            sealed.read_customer("C1")
    assert wrapped not in vault.keys_path.read_bytes()  # not even in a free block
    shutil.copy(backup, vault.path)  # the backup restored
    with house.warehouse.connection() as conn, vault.attached(conn) as sealed:
        with pytest.raises(CustomerErased):
            sealed.read_customer("C1")
        assert sealed.read_customer("C2")["first_name"].to_list() == ["Tove"]
        lineage = conn.sql(
            "SELECT arrival_date, _source_file AS source_file, _record_number "
            "AS record_number FROM stg_crm_customers"
        ).pl()
        opened = sealed.read_records(lineage).sort("customer_id")
    assert opened["is_erased"].to_list() == [True, False, False]
    assert opened["email"].to_list() == [None, "two@example.com", "three@example.com"]


def test_erasure_helpers_find_and_delete_a_customers_records(house: MiniHouse) -> None:
    vault = vault_beside(house.warehouse)
    email_hash = house.rows("SELECT email_hash FROM stg_crm_customers WHERE customer_id = 'C3'")
    with house.warehouse.connection() as conn, vault.attached(conn) as sealed:
        assert sealed.customers_by_email_hash(email_hash[0]["email_hash"]) == ["C3"]
        assert sealed.delete_customer_records(["C3"]) == 1
        assert sealed.read_customer("C3").is_empty()
        assert sealed.destroy_data_keys(["C3", "C2"]) == 2


def test_a_missing_malformed_or_wrong_key_is_a_clear_error(house: MiniHouse) -> None:
    path = vault_beside(house.warehouse).path
    for key, problem in (
        ("", "is not set"),
        ("not-a-key", "is malformed"),
        ("ab" * 16, "is malformed"),
    ):
        with (
            house.warehouse.connection() as conn,
            pytest.raises(VaultKeyError, match=f"SEG_VAULT_KEY {problem}") as error,
        ):
            Vault(path=path, key_encryption_key=key).attached(conn).__enter__()
        assert not key or key not in str(error.value)
    with (
        house.warehouse.connection() as conn,
        Vault(path=path, key_encryption_key=OTHER_KEY).attached(conn) as sealed,
        pytest.raises(VaultKeyError, match="SEG_VAULT_KEY does not open") as error,
    ):
        sealed.read_customer("C1")
    assert OTHER_KEY not in str(error.value) and TEST_VAULT_KEY not in str(error.value)
