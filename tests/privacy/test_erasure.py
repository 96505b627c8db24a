"""Erasure on request, on the generated month: a customer present in every kind of table is
erased by the Dagster job, verification finds nothing, the audit names no clear value, and a
backfill afterwards does not bring the customer back."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import polars as pl
import pytest
from dagster import DagsterInstance

from seg_pipeline.definitions import build_definitions
from seg_pipeline.privacy.erasure import (
    IDENTIFIER_COLUMNS,
    LEDGER_TABLES,
    ErasureError,
    customer_identifiers,
    erase_customers,
    find_identifiers,
    keyed_hashes,
    owned_tables,
)
from seg_pipeline.privacy.jobs import ERASURE_JOB_NAME, main
from seg_pipeline.settings import Settings
from tests.conftest import run_range, vault_for, warehouse_for

# Tables a customer who ordered, browsed, reviewed and was selected has rows in.
EXPECTED = {
    "raw_crm_customers",
    "stg_crm_customers",
    "raw_orders",
    "stg_orders",
    "raw_web_events",
    "stg_web_events",
    "web_session_fragments",
    "customer_features",
    "customer_clv",
    "customer_segments",
    "customer_scores",
    "recommendations",
    "audiences",
}


def _busy_customer(settings: Settings) -> str:
    """The customer with rows in the most of the tables above (ties: the smallest id)."""
    parts = " UNION ALL ".join(
        f"SELECT DISTINCT customer_id, '{t}' AS t FROM {t}" for t in sorted(EXPECTED)
    )
    return (
        warehouse_for(settings)
        .query(
            f"SELECT customer_id FROM ({parts}) WHERE customer_id IS NOT NULL "
            "GROUP BY 1 ORDER BY count(DISTINCT t) DESC, customer_id LIMIT 1"
        )
        .item()
    )


def _tables(settings: Settings) -> list[str]:
    return owned_tables(s for a in build_definitions(settings).assets for s in a.specs)


def _identifiers(settings: Settings, customer_id: str):
    with warehouse_for(settings).connection() as conn:
        return customer_identifiers(conn, [customer_id])


def _left(settings: Settings, identifiers) -> list:
    with warehouse_for(settings).connection() as conn:
        return find_identifiers(conn, identifiers)


def test_every_table_with_an_identifier_column_is_owned_by_an_asset(
    loaded_settings: Settings,
) -> None:
    owned = set(_tables(loaded_settings))
    catalogue = warehouse_for(loaded_settings).query(
        "SELECT DISTINCT CASE WHEN table_schema = 'main' THEN table_name "
        "ELSE table_schema || '.' || table_name END AS t, column_name AS c "
        "FROM information_schema.columns"
    )
    holding = {t for t, c in catalogue.iter_rows() if c in IDENTIFIER_COLUMNS}
    assert holding and holding - set(LEDGER_TABLES) <= owned
    assert "quarantine" in owned and "marketing_suppressions" in owned


@pytest.fixture
def busy(loaded_settings: Settings) -> tuple[Settings, str, pl.DataFrame, list]:
    """A copy of the loaded month, its busiest customer, their identifiers and where they
    are found."""
    customer = _busy_customer(loaded_settings)
    identifiers = _identifiers(loaded_settings, customer)
    return loaded_settings, customer, identifiers, _left(loaded_settings, identifiers)


def test_the_job_erases_a_customer_from_every_table_and_a_backfill_does_not_return_them(
    busy: tuple[Settings, str, pl.DataFrame, list],
) -> None:
    settings, customer, identifiers, before = busy
    assert {t for t, _, _ in before} >= EXPECTED
    kinds = set(identifiers["kind"])
    assert {"customer_id", "customer_key", "email_hash", "session_id"} <= kinds
    with warehouse_for(settings).connection() as conn:
        (key,) = keyed_hashes(conn, [customer])
        # the last day the customer's web events arrived: the backfill below loads it again
        ((day,),) = conn.execute(
            "SELECT max(_partition_date) FROM raw_web_events WHERE customer_id = $c",
            {"c": customer},
        ).fetchall()

    defs = build_definitions(settings)
    result = defs.resolve_job_def(ERASURE_JOB_NAME).execute_in_process(
        run_config={"ops": {"erase_customers": {"config": {"customer_keys": [key]}}}},
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success
    assert _left(settings, identifiers) == []
    # crypto-shredded: no data key, no record in the vault
    with warehouse_for(settings).connection() as conn, vault_for(settings).attached(conn) as vault:
        assert vault.data_keys([customer]) == {}
        assert vault.read_customer(customer).is_empty()

    audit = warehouse_for(settings).query("SELECT * FROM erasure_requests")
    assert audit.height == 1 and audit["customer_key"].item() == key
    assert audit["verified"].item() and audit["rows_deleted"].item() > 0
    deleted = json.loads(audit["tables"].item())
    assert set(deleted) >= EXPECTED | {"vault.data_keys", "vault.records"}
    assert customer not in str(audit.to_dicts())
    # the run's metadata counts rows, it names no customer
    events = "".join(str(e) for e in result.all_events)
    assert customer not in events and key not in events

    # A run of that day loads the landing files again: the tombstone keeps the
    # customer out of every table.
    backfill = run_range(defs, day, day)
    assert backfill.success
    (loaded,) = backfill.asset_materializations_for_node("raw_web_events")
    assert loaded.metadata["rows_of_erased_customers_dropped"].value > 0
    assert _left(settings, identifiers) == []


def test_an_email_address_finds_the_customer_from_the_command_line(
    loaded_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = loaded_settings
    crm = sorted((settings.landing_dir / "crm_customers").glob("*.csv"))[0]
    with crm.open(newline="") as handle:
        row = next(r for r in csv.DictReader(handle) if "@" in (r["email"] or ""))
    identifiers = _identifiers(settings, row["customer_id"])
    assert not identifiers.is_empty()
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    address = f"  {row['email'].upper()} "  # as a person types it
    assert main(["--email", address], defs=build_definitions(settings)) == 0
    assert _left(settings, identifiers) == []
    runs = DagsterInstance.get().get_runs()
    assert len(runs) == 1 and row["email"].lower() not in json.dumps(runs[0].run_config)


def test_a_table_left_out_fails_verification_and_changes_nothing(
    busy: tuple[Settings, str, pl.DataFrame, list],
) -> None:
    settings, customer, identifiers, before = busy
    tables = [t for t in _tables(settings) if t != "recommendations"]
    with (
        warehouse_for(settings).connection() as conn,
        pytest.raises(ErasureError, match=r"still in recommendations\.customer_id"),
    ):
        erase_customers(conn, tables, customer_ids=[customer])
    assert _left(settings, identifiers) == before


def test_an_unknown_customer_is_refused(loaded_settings: Settings) -> None:
    with warehouse_for(loaded_settings).connection() as conn:
        with pytest.raises(ErasureError, match="nothing was erased"):
            erase_customers(conn, _tables(loaded_settings), customer_ids=["C99999999x"])
        assert conn.execute("SELECT count(*) FROM erasure_requests").fetchall() == [(0,)]
