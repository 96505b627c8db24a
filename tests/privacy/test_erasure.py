"""Erasure on request, on the generated month: a customer present in every kind of table and
file is erased by the Dagster job, verification finds nothing, the audit names no clear value,
and a backfill afterwards does not bring the customer back."""

from __future__ import annotations

import csv
import json
import zipfile
from datetime import date
from functools import partial
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from dagster import DagsterInstance

from seg_pipeline.definitions import build_definitions
from seg_pipeline.models.store import ModelStore
from seg_pipeline.privacy.erasure import (
    IDENTIFIER_COLUMNS,
    LEDGER_TABLES,
    ErasureError,
    customer_identifiers,
    erase_customers,
    find_identifiers,
    keyed_hashes,
    owned_tables,
    search_values,
)
from seg_pipeline.privacy.files import OwnedFiles, find_in_files
from seg_pipeline.privacy.jobs import ERASURE_JOB_NAME, main
from seg_pipeline.resources import transaction
from seg_pipeline.segmentation import model as sm
from seg_pipeline.segmentation.config import SegmentationConfig
from seg_pipeline.settings import Settings
from tests.conftest import MONTH_END, own_files, run_range, vault_for, warehouse_for

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


# Treated and consented on some day: in that day's delivery export.
DELIVERED = (
    "SELECT a.customer_id, a.as_of_date FROM audiences AS a JOIN customer_features AS f "
    "USING (customer_id, as_of_date) WHERE NOT a.is_holdout AND f.has_marketing_consent"
)


def _busy_customer(settings: Settings) -> str:
    """The customer with rows in the most of the tables above, and a delivery (ties: the
    smallest id)."""
    parts = " UNION ALL ".join(
        [f"SELECT DISTINCT customer_id, '{t}' AS t FROM {t}" for t in sorted(EXPECTED)]
        + [f"SELECT DISTINCT customer_id, 'delivered' AS t FROM ({DELIVERED})"]
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
def busy(loaded_settings: Settings, tmp_path: Path) -> tuple[Settings, str, pl.DataFrame, list]:
    """A copy of the loaded month and its files, its busiest customer, their identifiers and
    where they are found."""
    settings = own_files(loaded_settings, tmp_path / "data")
    customer = _busy_customer(settings)
    identifiers = _identifiers(settings, customer)
    return settings, customer, identifiers, _left(settings, identifiers)


def _delivered_day(settings: Settings, customer: str) -> date:
    return (
        warehouse_for(settings)
        .query(f"SELECT max(as_of_date) FROM ({DELIVERED}) WHERE customer_id = '{customer}'")
        .item()
    )


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def test_the_job_erases_a_customer_from_every_table_and_file_and_a_backfill_does_not_return_them(
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
    with warehouse_for(settings).connection() as conn, vault_for(settings).attached(conn) as vault:
        email = vault.read_customer(customer)["email"].drop_nulls()[0]

    defs = build_definitions(settings)
    # the delivery export of a day the customer was sent to: their id and address in a file
    delivered = _delivered_day(settings, customer)
    assert run_range(defs, delivered, delivered, assets=["campaign_exports"]).success
    owned = OwnedFiles.from_settings(settings)
    values = [*search_values(identifiers), email]
    files_before = {
        Path(f).relative_to(settings.data_dir).parts[0] for f, _, _ in find_in_files(owned, values)
    }
    assert files_before >= {"landing", "exports", "delivery"}
    web_file = settings.landing_dir / "web_events" / f"{day}.jsonl"
    web_before = _lines(web_file)

    result = defs.resolve_job_def(ERASURE_JOB_NAME).execute_in_process(
        run_config={"ops": {"erase_customers": {"config": {"customer_keys": [key]}}}},
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success
    assert _left(settings, identifiers) == []
    assert find_in_files(owned, values) == []
    # crypto-shredded: no data key, no record in the vault
    with warehouse_for(settings).connection() as conn, vault_for(settings).attached(conn) as vault:
        assert vault.data_keys([customer]) == {}
        assert vault.read_customer(customer).is_empty()

    # the landing file lost the customer's lines and nothing else, byte for byte
    removed = [line for line in web_before if customer.encode() in line]
    assert removed and _lines(web_file) == [x for x in web_before if x not in removed]
    # a rewritten export folder's manifest and campaign_exports agree with its files
    manifest_path = settings.export_dir / delivered.isoformat() / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    assert manifest["erasures"]
    exported = warehouse_for(settings).query(
        f"SELECT file, row_count, sha256 FROM campaign_exports WHERE as_of_date = '{delivered}'"
        " AND kind = 'audience'"
    )
    for entry in manifest["files"]:
        path = manifest_path.parent / entry["file"]
        row = exported.filter(pl.col("file") == str(path)).row(0, named=True)
        assert (row["row_count"], row["sha256"]) == (entry["row_count"], entry["sha256"])
        if path.suffix == ".csv":
            assert entry["row_count"] == len(_lines(path)) - 1

    audit = warehouse_for(settings).query("SELECT * FROM erasure_requests")
    assert audit.height == 1 and audit["customer_key"].item() == key
    assert audit["verified"].item() and audit["rows_deleted"].item() > 0
    deleted = json.loads(audit["tables"].item())
    assert set(deleted) >= EXPECTED | {"vault.data_keys", "vault.records"}
    files = json.loads(audit["files"].item())
    assert (
        str(web_file) in files
        and {Path(f).relative_to(settings.data_dir).parts[0] for f in files} == files_before
    )
    assert customer not in str(audit.to_dicts()) and email not in str(audit.to_dicts())
    # the run's metadata counts rows, it names no customer
    events = "".join(str(e) for e in result.all_events)
    assert customer not in events and key not in events and email not in events

    # The source delivers the day's file again, the customer's lines included: the
    # tombstone keeps the customer out of every table.
    web_file.write_bytes(b"".join(web_before))
    backfill = run_range(defs, day, day)
    assert backfill.success
    (loaded,) = backfill.asset_materializations_for_node("raw_web_events")
    assert loaded.metadata["rows_of_erased_customers_dropped"].value > 0
    assert _left(settings, identifiers) == []


def test_a_model_file_holding_an_identifier_fails_verification(
    busy: tuple[Settings, str, pl.DataFrame, list],
) -> None:
    """An artifact that kept per-customer rows (here: a planted one) is found by the file
    search; the warehouse is rolled back and the error names the file and its member."""
    settings, customer, identifiers, before = busy
    artifact = settings.model_dir / "segmentation" / "planted.skops"
    with zipfile.ZipFile(artifact, "w") as archive:
        archive.writestr("rows.json", json.dumps({"kept_rows": [customer, "C0"]}))
    with (
        warehouse_for(settings).connection() as conn,
        pytest.raises(ErasureError, match=r"planted\.skops:rows\.json \(1\)"),
    ):
        erase_customers(
            conn,
            _tables(settings),
            customer_ids=[customer],
            files=OwnedFiles.from_settings(settings),
        )
    assert _left(settings, identifiers) == before


def test_an_email_address_finds_the_customer_from_the_command_line(
    loaded_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = own_files(loaded_settings, tmp_path / "data")
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


def test_a_density_model_forgets_the_erased_customers_training_rows(
    busy: tuple[Settings, str, pl.DataFrame, list],
) -> None:
    """Density clustering keeps sample rows (its reference points, no id): the erasure finds
    the customer's among them by their feature rows, removes them, and re-saves the model
    under its version; the old artifact file goes."""
    settings = busy[0]
    config = SegmentationConfig(algorithm="dbscan")
    store = ModelStore(model_dir=str(settings.model_dir))
    with warehouse_for(settings).connection() as conn:
        training, start = sm.training_rows(conn, MONTH_END, config)
        features = sm.features_of_day(conn, MONTH_END)
        model = sm.fit_model(
            training, features, config, MONTH_END, start, None, sm.next_segment_id(conn, store)
        )
        with transaction(conn):
            sm.save_model(conn, store, model)
        old = settings.model_dir / store.version(conn, model.version).artifact_path
    points = model.fit.estimator.reference_points_

    def kept(rows: pl.DataFrame, among: np.ndarray) -> int:
        x = model.transform(rows)
        return sum(int(np.isclose(among, r, rtol=0, atol=1e-9).all(axis=1).sum()) for r in x)

    # a customer with training rows among the reference points
    customer = next(
        c
        for c in training["customer_id"].unique(maintain_order=True)
        if kept(training.filter(pl.col("customer_id") == c), points)
    )
    theirs = training.filter(pl.col("customer_id") == customer)
    expected = kept(theirs, points)

    with warehouse_for(settings).connection() as conn:
        report = erase_customers(
            conn,
            _tables(settings),
            customer_ids=[customer],
            purge_models=partial(sm.erase_training_rows, models=store),
        )
        reloaded = sm.load_model(conn, store, model.version)
    assert report.rows_by_table[f"model {model.version}"] == expected
    left = reloaded.fit.estimator.reference_points_
    assert len(left) == len(points) - expected and kept(theirs, left) == 0
    assert not old.exists()
    # the model still assigns everyone else, nearly always as before
    others = features.filter(pl.col("customer_id") != customer)
    assert (reloaded.predict(others) == model.predict(others)).mean() > 0.99


def test_a_session_id_equal_to_another_persons_visitor_id_is_not_theirs(
    busy: tuple[Settings, str, pl.DataFrame, list],
) -> None:
    """Session, event and visitor ids are 64-bit values of different kinds: one of the
    customer's session ids standing as another person's anonymous_id (as the generator's ids
    do at 5,000 customers) neither fails the verification nor takes that person's event."""
    settings, customer, identifiers = busy[0], busy[1], busy[2]
    session = identifiers.filter(pl.col("kind") == "session_id")["value"][0]
    with warehouse_for(settings).connection() as conn:
        conn.execute(
            "UPDATE stg_web_events SET anonymous_id = $s WHERE event_id = (SELECT min(event_id) "
            "FROM stg_web_events WHERE customer_id IS NOT NULL AND customer_id <> $c)",
            {"s": session, "c": customer},
        )
        erase_customers(conn, _tables(settings), customer_ids=[customer])
        left = conn.execute(
            "SELECT count(*) FROM stg_web_events WHERE anonymous_id = $s", {"s": session}
        ).fetchall()
    assert left == [(1,)]
