"""Data-quality gates: the GX suites, their validation on the month, and the Dagster checks."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest
from dagster import AssetCheckSeverity

from seg_pipeline.definitions import build_definitions
from seg_pipeline.partitions import daily_partitions
from seg_pipeline.quality.checks import (
    build_quality_checks,
    check_result,
    read_window,
    report_metadata,
    validate_window,
)
from seg_pipeline.quality.quarantine import QualityPolicy
from seg_pipeline.quality.suites import (
    ERROR,
    QUALITY_TABLES,
    QUALITY_TABLES_BY_NAME,
    UNIQUE_KEY_TYPE,
    WARN,
    derived_columns,
    load_suite,
    mask_if_personal,
    mask_value,
    row_count_rules,
    suite_columns,
    suite_labels,
    suite_parameter_names,
    table_column_types,
)
from seg_pipeline.settings import REPO_ROOT
from seg_pipeline.sources import ORDERS, SOURCES
from tests.conftest import run_range, warehouse_for
from tests.helpers import landing_personal_values

DAY = date(2026, 1, 15)
NOW = datetime(2026, 2, 1, 12, 0)
TABLES = [t.table for t in QUALITY_TABLES]


def _validate(settings, table: str, day: date = DAY):
    with warehouse_for(settings).connection() as conn:
        return validate_window(conn, table, day, day, now=NOW)


def _execute(settings, sql: str) -> None:
    with warehouse_for(settings).connection() as conn:
        conn.execute(sql)


# -- the suite files ---------------------------------------------------------------------------


def test_one_suite_per_raw_and_staging_table() -> None:
    files = sorted(p.stem for p in (REPO_ROOT / "expectations").glob("*.json"))
    assert files == sorted(TABLES)
    for table in TABLES:
        suite = load_suite(table)
        assert suite["name"] == table
        assert suite["meta"]["severity_policy"]
        assert {e["meta"]["severity"] for e in suite["expectations"]} <= {ERROR, WARN}
        assert len(set(suite_labels(suite))) == len(suite["expectations"])
        assert suite_parameter_names(suite) >= {"window_start", "window_end", "min_row_count"}


def test_suites_name_only_existing_columns(loaded_month) -> None:
    import duckdb

    conn = duckdb.connect(str(loaded_month), read_only=True)
    try:
        for table in TABLES:
            columns = {r[0] for r in conn.execute(f"DESCRIBE {table}").fetchall()}
            unknown = set(suite_columns(load_suite(table))) - columns
            assert not unknown, f"{table}: suite names missing columns {unknown}"
    finally:
        conn.close()


def test_row_count_rule_skips_without_history_and_fails_a_95_percent_drop() -> None:
    counts = {date(2026, 1, d): 100 for d in range(1, 10)}
    counts[date(2026, 1, 10)] = 5
    short, drop, fine = (
        row_count_rules(counts, date(2026, 1, 2), date(2026, 1, 2))[0],
        *(row_count_rules(counts, date(2026, 1, 9), date(2026, 1, 10))[::-1]),
    )
    assert short.min_row_count == 0 and "skipped" in short.note
    assert drop.row_count == 5 and drop.min_row_count == 10
    assert fine.row_count == 100 and fine.min_row_count == 10


def test_masking() -> None:
    assert mask_value("anna.smith@example.com") == "a***@***.com"
    assert mask_value("+44 7700 900123") == "***"
    assert mask_if_personal("first_name", "Anna") == "***"
    assert mask_if_personal("country", "DE") == "DE"
    assert mask_if_personal(None, "x y@z.de") == "x***@***.de"
    assert mask_if_personal(None, {"email": "a@b.cd", "customer_id": "C1"}) == {
        "email": "a***@***.cd",
        "customer_id": "C1",
    }


STRICT_STAGING_TYPES = {
    "expect_column_values_to_not_be_null",
    "expect_compound_columns_to_be_unique",
    "expect_column_values_to_be_null",
    "expect_column_values_to_be_between",
    "expect_column_values_to_be_in_set",
}


def test_staging_gates_are_strict_and_lateness_comes_from_the_policy() -> None:
    """Quarantine keeps rule-breaking rows out of staging, so no staging gate tolerates any."""
    for table in (t.table for t in QUALITY_TABLES if t.layer == "staging"):
        suite = load_suite(table)
        assert "lateness_days" not in suite["meta"], table  # one setting: QualityPolicy
        for expectation in suite["expectations"]:
            if expectation["meta"]["severity"] == ERROR:
                assert expectation["kwargs"].get("mostly", 1.0) >= 1.0, (table, expectation)
            assert "known_customer_ids" not in json.dumps(expectation), table
        if table != "stg_crm_customers":
            assert "lateness_days" in suite_parameter_names(suite), table
            derived = {d["name"]: d for d in derived_columns(suite)}
            assert {"_days_before_arrival", "_unknown_customer_id"} <= set(derived), table
            assert "stg_crm_customers" in derived["_unknown_customer_id"]["sql"]


def test_derived_columns_read_only_what_they_declare() -> None:
    suite = load_suite("stg_web_events")
    columns = suite_columns(suite)
    assert "_unknown_customer_id" not in columns and "_days_before_arrival" not in columns
    assert {"customer_id", "resolved_customer_id", "event_date", "arrival_date"} <= set(columns)


# -- validation on the month -------------------------------------------------------------------


@pytest.mark.parametrize("table", ["raw_web_events", "raw_orders", "stg_orders"])
def test_uniqueness_in_sql_finds_what_gx_finds(loaded_settings, table: str) -> None:
    """The key rules run in DuckDB (unique_keys_in_sql); on the generator's raw files, which
    repeat keys, they find the same rows as GX's own compound-uniqueness test on the frame."""
    from seg_pipeline.quality.checks import _gx_validate, _labelled, split_by_columns

    spec = QUALITY_TABLES_BY_NAME[table]
    suite = _labelled(load_suite(table))
    rule = next(e for e in suite["expectations"] if e["type"] == UNIQUE_KEY_TYPE)
    label = rule["meta"]["label"]
    (part,) = [p for p in split_by_columns(suite) if p["expectations"] == [rule]]
    with warehouse_for(loaded_settings).connection() as conn:
        types = table_column_types(conn, table)
        frame = read_window(conn, spec, part, types, DAY, DAY)
        report = validate_window(conn, table, DAY, DAY, now=NOW)
    (gx,) = _gx_validate(frame, part, {})
    ours = report.outcome(label)
    assert ours.unexpected_count == gx.result["unexpected_count"]
    assert ours.success == gx.success
    if table.startswith("raw_"):
        assert ours.unexpected_count > 0  # the generator repeats keys in raw files
        key = json.loads(ours.sample[0])
        assert set(key) == set(rule["kwargs"]["column_list"])


def test_window_is_read_into_vectorised_dtypes(loaded_settings) -> None:
    """GX's pandas engine loops in Python over object columns and over non-ns datetimes; the
    window must arrive as pyarrow strings, datetime64[ns] and int64/float64."""
    import pandas as pd

    spec = QUALITY_TABLES_BY_NAME["stg_orders"]
    suite = load_suite("stg_orders")
    with warehouse_for(loaded_settings).connection() as conn:
        types = table_column_types(conn, "stg_orders")
        frame = read_window(conn, spec, suite, types, DAY, DAY)
    assert len(frame) > 0
    assert "_unknown_customer_id" in frame.columns and "_days_before_arrival" in frame.columns
    assert frame["_unknown_customer_id"].isna().all()
    assert set(frame.columns) < set(types) | {"_unknown_customer_id", "_days_before_arrival"}
    for column, dtype in frame.dtypes.items():
        assert str(dtype) != "object", column  # Python objects: GX loops
        if types.get(column) in ("DATE", "TIMESTAMP"):
            assert dtype == "datetime64[ns]", column
    assert frame["order_id"].dtype == pd.StringDtype("pyarrow", na_value=float("nan"))
    assert frame["quantity"].dtype in ("int64", "float64")
    assert frame["unit_price"].dtype == "float64"


def test_lateness_is_per_row_and_follows_the_policy(loaded_settings) -> None:
    """A row five days older than its arrival passes with the default lateness (7 days, from
    QualityPolicy) and fails when the policy allows three."""
    _execute(
        loaded_settings,
        f"UPDATE stg_web_events SET event_date = arrival_date - 5 WHERE arrival_date = '{DAY}' "
        f"AND _record_number = (SELECT min(_record_number) FROM stg_web_events "
        f"WHERE arrival_date = '{DAY}')",
    )
    label = "expect_column_values_to_be_between(_days_before_arrival)"
    assert QualityPolicy().max_lateness_days == 7
    assert _validate(loaded_settings, "stg_web_events").passed
    with warehouse_for(loaded_settings).connection() as conn:
        report = validate_window(conn, "stg_web_events", DAY, DAY, now=NOW, lateness_days=3)
    assert [o.label for o in report.failed] == [label]
    assert report.outcome(label).unexpected_count == 1
    assert report.outcome(label).sample == [5]


def test_customer_must_be_known_by_the_rows_arrival_day(loaded_settings) -> None:
    """Referential integrity is per row: a customer the CRM first delivers after the row's
    arrival day is unknown on that day, even inside a window that ends later."""
    with warehouse_for(loaded_settings).connection() as conn:
        later = conn.execute(
            "SELECT customer_id FROM stg_crm_customers GROUP BY 1 "
            "HAVING min(arrival_date) > $day ORDER BY 1 LIMIT 1",
            {"day": DAY},
        ).fetchone()
        assert later, "the month has customers delivered after DAY"
        conn.execute(
            "UPDATE stg_reviews SET customer_id = $c WHERE arrival_date = $day AND _record_number "
            "= (SELECT min(_record_number) FROM stg_reviews WHERE arrival_date = $day)",
            {"c": later[0], "day": DAY},
        )
        report = validate_window(conn, "stg_reviews", DAY, date(2026, 1, 31), now=NOW)
    label = "expect_column_values_to_be_null(_unknown_customer_id)"
    assert [o.label for o in report.failed if o.severity == ERROR] == [label]
    assert report.outcome(label).unexpected_count == 1
    assert report.outcome(label).sample == [later[0]]


def test_every_suite_passes_on_a_clean_partition(loaded_settings) -> None:
    for table in TABLES:
        report = _validate(loaded_settings, table)
        assert report.rows > 0, table
        assert report.passed, (table, [o.as_dict() for o in report.failed])
        result = check_result(report)
        assert result.passed
        assert result.metadata["failed_expectations"].value == "none"


@pytest.mark.parametrize(
    ("table", "corruption", "label", "count"),
    [
        (
            "stg_orders",
            "UPDATE stg_orders SET quantity = -1 WHERE order_id IN "
            "(SELECT order_id FROM stg_orders WHERE arrival_date = '{day}' LIMIT 3)",
            "expect_column_values_to_be_between(quantity)",
            None,
        ),
        (
            "stg_orders",
            "INSERT INTO stg_orders SELECT * FROM stg_orders WHERE arrival_date = '{day}' LIMIT 1",
            "expect_compound_columns_to_be_unique(arrival_date, order_id, line_number)",
            2,
        ),
        (
            "stg_web_events",
            "UPDATE stg_web_events SET event_id = NULL WHERE event_id IN "
            "(SELECT event_id FROM stg_web_events WHERE arrival_date = '{day}' LIMIT 2)",
            "expect_column_values_to_not_be_null(event_id)",
            2,
        ),
        (
            "stg_reviews",
            "UPDATE stg_reviews SET review_date = DATE '2025-06-01' WHERE review_id IN "
            "(SELECT review_id FROM stg_reviews WHERE arrival_date = '{day}' LIMIT 1)",
            "expect_column_values_to_be_between(_days_before_arrival)",
            1,
        ),
        (
            "stg_orders",
            "UPDATE stg_orders SET customer_id = 'C-NOT-IN-CRM' WHERE arrival_date = '{day}' "
            "AND _record_number IN (SELECT _record_number FROM stg_orders "
            "WHERE arrival_date = '{day}' LIMIT 2)",
            "expect_column_values_to_be_null(_unknown_customer_id)",
            2,
        ),
        (
            "stg_orders",
            "UPDATE stg_orders SET unit_price = 0 WHERE order_id IN "
            "(SELECT order_id FROM stg_orders WHERE arrival_date = '{day}' LIMIT 1)",
            "expect_column_values_to_be_between(unit_price)",
            None,
        ),
        (
            "stg_web_events",
            "DELETE FROM stg_web_events WHERE arrival_date = '{day}' AND hash(event_id) % 20 <> 0",
            "expect_table_row_count_to_be_between",
            1,
        ),
        (
            "raw_orders",
            "UPDATE raw_orders SET _partition_date = DATE '2026-01-16' WHERE _partition_date = "
            "'{day}' AND _record_number < 4",
            None,
            None,
        ),
    ],
    ids=[
        "bad_quantity",
        "duplicate_key",
        "null_key",
        "late_timestamp",
        "unknown_customer",
        "zero_price",
        "row_drop",
        "raw_ok",
    ],
)
def test_a_corrupted_partition_fails_the_right_expectation(
    loaded_settings, table, corruption, label, count
) -> None:
    _execute(loaded_settings, corruption.format(day=DAY.isoformat()))
    report = _validate(loaded_settings, table)
    if label is None:  # moving rows to another day is not a quality problem of this day
        assert report.passed
        return
    # a null key also breaks the grain's uniqueness: the named expectation is among the failed
    assert label in [o.label for o in report.failed]
    outcome = report.outcome(label)
    assert outcome.severity == ERROR and report.severity == ERROR
    if count is not None:
        assert outcome.unexpected_count == count
    metadata = report_metadata(report)
    assert label in metadata["failed_expectations"]
    assert label in metadata["expectations"].value
    assert not check_result(report).passed
    assert check_result(report).severity == AssetCheckSeverity.ERROR


def test_personal_data_is_masked_in_check_metadata(loaded_settings) -> None:
    """Put real e-mail addresses (from the landing file: the warehouse has none) where the
    country belongs, breaking its expectation: the metadata shows masks only."""
    day = date(2026, 1, 1)
    emails = landing_personal_values(loaded_settings.landing_dir, ("email",))
    with warehouse_for(loaded_settings).connection() as conn:
        conn.execute(
            "UPDATE raw_crm_customers SET country = $email WHERE _partition_date = $day",
            {"email": min(e for e in emails if "@" in e and e == e.strip()), "day": day},
        )
        report = validate_window(conn, "raw_crm_customers", day, day)
    label = "expect_column_values_to_match_regex(country)"
    assert label in [o.label for o in report.failed]
    assert report.outcome(label).sample and all(
        "***" in value for value in report.outcome(label).sample
    )
    text = json.dumps({k: str(v) for k, v in report_metadata(report).items()})
    assert "@***" in text
    leaked = [e for e in emails if e and e in text]
    assert not leaked


# -- Dagster -----------------------------------------------------------------------------------


def test_checks_are_blocking_and_partitioned() -> None:
    partitions_def = daily_partitions("2026-01-01")
    checks = build_quality_checks(partitions_def)
    assert {c.check_key.asset_key.path[-1] for c in checks} == set(TABLES)
    for check in checks:
        spec = next(iter(check.check_specs))
        assert spec.blocking
        assert check.partitions_def == partitions_def


def test_failing_blocking_staging_check_stops_downstream(loaded_settings, tmp_path) -> None:
    """The real daily job with the checks wired: a day whose orders file lost 95% of its lines
    fails the blocking stg_orders check (row-count rule), so the asset downstream of stg_orders
    does not run, while the other sources' assets and checks go on."""
    landing = tmp_path / "landing"
    for source in SOURCES:
        src = source.path_for(loaded_settings.landing_dir, DAY)
        dst = source.path_for(landing, DAY)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, dst)
    orders = ORDERS.path_for(landing, DAY)
    lines = orders.read_text(encoding="utf-8").splitlines(keepends=True)
    orders.write_text("".join(lines[:3]), encoding="utf-8")
    settings = replace(loaded_settings, landing_dir=landing)

    result = run_range(build_definitions(settings), DAY, DAY, raise_on_error=False)
    evaluations = {
        e.asset_check_key.asset_key.path[-1]: e for e in result.get_asset_check_evaluations()
    }
    assert set(evaluations) == set(TABLES)
    assert not evaluations["stg_orders"].passed
    assert evaluations["stg_orders"].severity == AssetCheckSeverity.ERROR
    failed = evaluations["stg_orders"].metadata["failed_expectations"].value
    assert "expect_table_row_count_to_be_between" in failed
    materialized = {
        e.event_specific_data.materialization.asset_key.path[-1]
        for e in result.get_asset_materialization_events()
    }
    assert "stg_orders" in materialized and "stg_web_events" in materialized
    assert "customer_features" not in materialized  # downstream of stg_orders: blocked
    assert not result.success
    assert evaluations["stg_web_events"].passed


def test_loading_definitions_does_not_import_great_expectations() -> None:
    """Nor the other heavy libraries the steps use: the UI, every run and the CLI load the
    definitions (6 s with them at module top, 2 s without)."""
    heavy = ["great_expectations", "sklearn", "scipy", "matplotlib", "minisom", "pandas"]
    code = (
        "import sys, seg_pipeline.definitions, seg_pipeline.quality.checks;"
        "from seg_pipeline.quality.checks import build_quality_checks;"
        "from seg_pipeline.partitions import daily_partitions;"
        "build_quality_checks(daily_partitions('2026-01-01'));"
        "sys.exit(1 if 'great_expectations' in sys.modules else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    code = (
        f"import sys, seg_pipeline.definitions; print([m for m in {heavy!r} if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True)
    assert done.stdout.decode().strip() == "[]", done.stderr.decode()[-2000:]


def test_raw_volume_below_half_of_the_usual_is_a_warning(tmp_path) -> None:
    """A file cut at a line boundary loads cleanly; only its volume shows it. Below half the
    median of the previous days is a WARN on the raw table (below 10% stays the staging
    ERROR)."""
    from tests.quality.minihouse import MiniHouse, order_row

    house = MiniHouse(tmp_path)
    first = date(2026, 1, 1)
    for offset in range(7):
        day = first + timedelta(days=offset)
        house.deliver(ORDERS, day, [order_row(f"O{offset}-{i}", day) for i in range(20)])
        house.load(ORDERS, day)
    day = first + timedelta(days=7)
    label = "expect_table_row_count_to_be_between"
    for rows, passed in ((11, True), (9, False)):
        house.deliver(ORDERS, day, [order_row(f"N{i}", day) for i in range(rows)])
        house.load(ORDERS, day)
        with house.warehouse.connection() as conn:
            report = validate_window(conn, "raw_orders", day, day, now=NOW)
        assert report.outcome(label).success is passed, rows
        assert report.outcome(label).severity == WARN
        assert not [o for o in report.failed if o.severity == ERROR]
