"""Every raw and staging asset on a generated month, through Dagster, on a real DuckDB file."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from seg_pipeline.definitions import build_definitions
from seg_pipeline.settings import Settings
from seg_pipeline.sources import CRM_CUSTOMERS, SOURCES
from seg_pipeline.staging.models import MODELS
from tests.conftest import MONTH_START, TEST_KEY, run_range, warehouse_for
from tests.helpers import (
    duplicate_keys,
    fingerprint,
    landing_crm_records,
    landing_personal_values,
    metadata_text,
)

# The grain of each staging table (the CRM keeps one version per customer and arrival day).
STAGING_KEYS = {
    "stg_crm_customers": ["arrival_date", "customer_id"],
    "stg_orders": ["arrival_date", "order_id", "line_number"],
    "stg_web_events": ["arrival_date", "event_id"],
    "stg_reviews": ["arrival_date", "review_id"],
    "stg_campaign_sends": ["arrival_date", "campaign_id", "customer_id"],
}
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[a-z]{2,}")


def test_the_grain_list_covers_every_staging_table() -> None:
    assert set(STAGING_KEYS) == {model.table for model in MODELS}


@pytest.fixture
def conn(loaded_month) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect(str(loaded_month), read_only=True)
    yield connection
    connection.close()


def test_every_day_of_every_source_is_loaded(conn: duckdb.DuckDBPyConnection, month) -> None:
    _, summary = month
    for source in SOURCES:
        days_with_rows = {d for d, n in summary.rows[source.name].items() if n > 0}
        assert len(days_with_rows) >= 25, source.name
        loaded = conn.execute(f"SELECT DISTINCT _partition_date FROM raw_{source.name}").fetchall()
        assert {r[0] for r in loaded} == days_with_rows, source.name
    for table in STAGING_KEYS:
        days = conn.execute(f"SELECT count(DISTINCT arrival_date) FROM {table}").fetchone()[0]
        assert days >= 25, table


def test_raw_rows_match_the_landing_files_line_for_line(
    conn: duckdb.DuckDBPyConnection, month
) -> None:
    settings, _ = month
    for source in SOURCES:
        if source.file_format == "parquet":
            expected = conn.execute(
                "SELECT count(*) FROM read_parquet($glob)",
                {"glob": str(settings.landing_dir / source.name / "*.parquet")},
            ).fetchone()[0]
        else:
            expected = 0
            for path in sorted((settings.landing_dir / source.name).glob("*")):
                lines = path.read_bytes().count(b"\n")
                expected += lines - (1 if source.file_format == "csv" else 0)
        loaded = conn.execute(f"SELECT count(*) FROM raw_{source.name}").fetchone()[0]
        rejected = conn.execute(
            "SELECT count(*) FROM quarantine WHERE stage = 'load' AND source = $s",
            {"s": source.name},
        ).fetchone()[0]
        # Every delivered line is either a raw row or a reject: nothing is lost.
        assert loaded + rejected == expected, source.name


def test_malformed_lines_are_rejected_with_file_and_line(
    conn: duckdb.DuckDBPyConnection, month
) -> None:
    _, summary = month
    for source in SOURCES:
        rejected = conn.execute(
            "SELECT count(*) FROM quarantine WHERE stage = 'load' AND source = $s",
            {"s": source.name},
        ).fetchone()[0]
        assert rejected == summary.mess[source.name]["malformed_line"], source.name
    rejects = conn.execute(
        "SELECT source, source_file, line_number, raw_record FROM quarantine WHERE stage = 'load'"
    ).fetchall()
    assert {r[0] for r in rejects} >= {"orders", "web_events"}
    for source, path, line, raw_line in rejects:
        assert path.endswith(tuple(f".{s.extension}" for s in SOURCES))
        assert line >= 1 and raw_line, (source, path)


def test_staging_has_no_duplicate_keys_but_raw_had_some(conn: duckdb.DuckDBPyConnection) -> None:
    for table, key in STAGING_KEYS.items():
        assert duplicate_keys(conn, table, key) == 0, table
    assert duplicate_keys(conn, "raw_web_events", ["_partition_date", "event_id"]) > 0
    assert duplicate_keys(conn, "raw_orders", ["_partition_date", "order_id", "line_number"]) > 0


def test_late_rows_keep_their_real_day(conn: duckdb.DuckDBPyConnection) -> None:
    for table, date_col in (
        ("stg_orders", "order_date"),
        ("stg_web_events", "event_date"),
        ("stg_reviews", "review_date"),
    ):
        late, too_early, bad_flag = conn.execute(
            f"""SELECT count(*) FILTER (WHERE is_late),
                       count(*) FILTER (WHERE is_late AND {date_col} < arrival_date - 7),
                       count(*) FILTER (WHERE is_late <> ({date_col} < arrival_date))
                FROM {table}"""
        ).fetchone()
        assert late > 0 and too_early == 0 and bad_flag == 0, table


def test_timestamps_are_converted_to_utc(conn: duckdb.DuckDBPyConnection) -> None:
    rows = conn.execute(
        """SELECT r.ordered_at, s.ordered_at
           FROM raw_orders r JOIN stg_orders s
             ON s.order_id = r.order_id AND s.line_number = try_cast(r.line_number AS INTEGER)
            AND s.arrival_date = r._partition_date
           WHERE r.ordered_at LIKE '%+0%' OR r.ordered_at LIKE '%-0%'
           LIMIT 200"""
    ).fetchall()
    assert rows
    for text, staged in rows:
        parsed = datetime.fromisoformat(text).astimezone(UTC).replace(tzinfo=None)
        assert staged == parsed


def test_personal_data_is_pseudonymised_in_raw_and_staging(
    conn: duckdb.DuckDBPyConnection, month
) -> None:
    """The warehouse holds keyed hashes of the delivered e-mails (the clear ones are in the
    vault only: tests/privacy)."""
    for table in ("raw_crm_customers", "stg_crm_customers"):
        columns = {r[0] for r in conn.execute(f"DESCRIBE {table}").fetchall()}
        assert not columns & set(CRM_CUSTOMERS.personal), table
    first_day = CRM_CUSTOMERS.path_for(month[0].landing_dir, MONTH_START).name
    delivered = [r for r in landing_crm_records(month[0].landing_dir, first_day) if r["email"]][:50]
    staged = dict(
        conn.execute(
            "SELECT customer_id, email_hash FROM stg_crm_customers WHERE arrival_date = $d",
            {"d": MONTH_START},
        ).fetchall()
    )
    pairs = [
        (email.strip().lower(), staged[c])
        for c, email in ((r["customer_id"], r["email"]) for r in delivered)
        if c in staged
    ]
    assert pairs
    for email, email_hash in pairs:
        assert email_hash == hmac.new(TEST_KEY.encode(), email.encode(), "sha256").hexdigest()
    for table in ("raw_crm_customers", "stg_crm_customers", "stg_orders", "stg_reviews"):
        text = str(conn.execute(f"SELECT * FROM {table} LIMIT 500").fetchall())
        assert not EMAIL.search(text), table
    assert hashlib  # keyed hash differs from a plain one:
    assert pairs[0][1] != hashlib.sha256(pairs[0][0].encode()).hexdigest()


def test_unknown_customers_are_quarantined_not_staged(conn: duckdb.DuckDBPyConnection) -> None:
    for table in ("stg_orders", "stg_reviews", "stg_campaign_sends"):
        orphans = conn.execute(
            f"""SELECT count(*) FROM {table} AS t WHERE NOT EXISTS (
                    SELECT 1 FROM stg_crm_customers AS c
                    WHERE c.customer_id = t.customer_id AND c.arrival_date <= t.arrival_date)"""
        ).fetchone()[0]
        assert orphans == 0, table
    quarantined = conn.execute(
        """SELECT count(*), count(*) FILTER (WHERE reason LIKE 'customer % is not in the CRM')
           FROM quarantine WHERE rule = 'unknown_customer' AND table_name = 'stg_orders'"""
    ).fetchone()
    assert quarantined[0] > 0 and quarantined[0] == quarantined[1]


def test_every_raw_row_is_staged_quarantined_or_an_exact_repeat(
    conn: duckdb.DuckDBPyConnection,
) -> None:
    for source in SOURCES:
        if source.name == "crm_customers":
            continue  # CDC: superseded versions of a day are history, not repeats
        table = f"stg_{source.name}"
        raw = conn.execute(f"SELECT count(*) FROM raw_{source.name}").fetchone()[0]
        staged = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        quarantined = conn.execute(
            "SELECT count(*) FROM quarantine WHERE table_name = $t", {"t": table}
        ).fetchone()[0]
        columns = ", ".join(f'"{c}"' for c in source.columns)
        repeats = conn.execute(
            f"SELECT count(*) - count(DISTINCT ({columns}, _partition_date)) FROM raw_{source.name}"
        ).fetchone()[0]
        dropped = raw - staged - quarantined
        assert 0 <= dropped <= repeats, (table, raw, staged, quarantined, repeats)
        # the generator plants repeats in these, so the dedup path is exercised
        assert repeats > 0 or source.name not in {"orders", "web_events"}, table


def test_quarantine_keeps_the_raw_record_without_personal_data(
    conn: duckdb.DuckDBPyConnection, month
) -> None:
    rows = conn.execute(
        "SELECT table_name, rule, reason, source_file, line_number, raw_record "
        "FROM quarantine WHERE stage = 'staging'"
    ).fetchall()
    assert {r[0] for r in rows} >= {"stg_orders", "stg_web_events", "stg_campaign_sends"}
    for table, rule, reason, path, line, record in rows:
        assert rule and reason and path and line, (table, rule)
        assert record.startswith("{") and not EMAIL.search(record), table
    emails = landing_personal_values(month[0].landing_dir, ("email",))
    text = str(conn.execute("SELECT * FROM quarantine").fetchall())
    assert not any(e and e in text for e in emails)


def test_rematerializing_a_partition_gives_the_same_tables(loaded_settings: Settings) -> None:
    warehouse = warehouse_for(loaded_settings)
    tables = [f"raw_{s.name}" for s in SOURCES] + list(STAGING_KEYS)
    with warehouse.connection() as c:
        before = {t: fingerprint(c, t) for t in tables}
    day = MONTH_START + timedelta(days=14)
    result = run_range(build_definitions(loaded_settings), day, day)
    assert result.success
    with warehouse.connection() as c:
        after = {t: fingerprint(c, t) for t in tables}
        for table, key in STAGING_KEYS.items():
            assert duplicate_keys(c, table, key) == 0
    assert after == before


def test_a_missing_file_fails_and_leaves_the_warehouse_as_it_was(
    loaded_settings: Settings, tmp_path
) -> None:
    import shutil
    from dataclasses import replace

    landing = tmp_path / "landing"
    shutil.copytree(loaded_settings.landing_dir, landing)
    day = MONTH_START + timedelta(days=20)
    (landing / "orders" / f"{day.isoformat()}.csv").unlink()
    settings = replace(loaded_settings, landing_dir=landing)
    warehouse = warehouse_for(settings)
    with warehouse.connection() as c:
        before = {t: fingerprint(c, t) for t in ("raw_orders", "stg_orders")}
    result = run_range(
        build_definitions(settings), day - timedelta(days=1), day, raise_on_error=False
    )
    assert not result.success
    failure = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = str(failure[0].event_specific_data.error)
    assert f"orders/{day.isoformat()}.csv" in message and "missing" in message
    with warehouse.connection() as c:
        assert {t: fingerprint(c, t) for t in ("raw_orders", "stg_orders")} == before


def test_metadata_has_counts_schema_and_no_personal_data(month, tmp_path) -> None:
    from dataclasses import replace

    settings = replace(month[0], warehouse_path=tmp_path / "w.duckdb")
    end = MONTH_START + timedelta(days=1)
    result = run_range(build_definitions(settings), MONTH_START, end)
    warehouse = warehouse_for(settings)
    emails = landing_personal_values(settings.landing_dir, ("email",))
    seen = set()
    for event in result.all_events:
        if event.event_type_value != "ASSET_MATERIALIZATION":
            continue
        materialization = event.event_specific_data.materialization
        meta = materialization.metadata
        if materialization.asset_key.to_user_string() in {"review_topic_model", "clv_model"}:
            continue  # models: their rows are fits, not the window's partitions
        table = meta["dagster/table_name"].value
        text = metadata_text(meta)
        assert not any(e and e in text for e in emails)
        assert not EMAIL.search(text)
        seen.add(materialization.asset_key.to_user_string())
        if "dagster/column_schema" not in meta:
            # no rows on any day yet (segment_profiles before the minimum history): no table
            assert meta["dagster/row_count"].value == 0
            assert (
                warehouse.query(
                    f"SELECT count(*) FROM duckdb_tables() WHERE table_name = '{table}'"
                ).item()
                == 0
            )
            continue
        columns = set(warehouse.query(f"SELECT * FROM {table} LIMIT 0").columns)
        column = next(c for c in ("_partition_date", "arrival_date", "as_of_date") if c in columns)
        expected = warehouse.query(
            f"SELECT count(*) AS n FROM {table} WHERE {column} BETWEEN $s AND $e",
            {"s": MONTH_START, "e": end},
        ).item()
        assert meta["dagster/row_count"].value == expected
        assert meta["dagster/column_schema"].value.columns
    # the 18 tables of before, the two feature tables that are now assets of their own and
    # the two predictive tables, the six activation tables (uplift_models and uplift_scores
    # among them) and model_drift, less customer_pii (the vault holds clear values, outside
    # the warehouse)
    assert len(seen) == 28
    assert {"customer_feature_state", "web_session_fragments"} <= seen
