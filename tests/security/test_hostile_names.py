"""Hostile names: text that reaches a file path or SQL (playbook campaign ids, source names,
partition keys, folder settings, table names) with ``../``, an absolute path, a quote, a
semicolon or a control character is refused with an error naming where it came from; nothing
is written outside the configured folders; no SQL is built from such text."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from dagster import AssetKey, DagsterInstance
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from seg_pipeline.activation.exports import ExportFolders, export_day
from seg_pipeline.activation.playbook import PlaybookError, load_playbook
from seg_pipeline.definitions import build_definitions
from seg_pipeline.names import UnsafeNameError, path_under
from seg_pipeline.ops.schedules import DAILY_JOB_NAME
from seg_pipeline.resources import (
    drop_tables,
    registered,
    replace_window,
    table_columns,
    write_frame,
)
from seg_pipeline.settings import Settings
from seg_pipeline.sources import ORDERS, SOURCES
from tests.activation.conftest import ACTIVATION_START
from tests.conftest import MONTH_START, warehouse_for

HOSTILE = [
    "../escape",
    "../../../../tmp/escape",
    "/tmp/absolute",
    "it's",
    'say "hi"',
    "x; DROP TABLE audiences; --",
    "back\\slash",
    "new\nline",
    "nul\x00byte",
    "",
]


def _files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")}


# -- playbook campaign ids (export file names) ---------------------------------------------


@pytest.mark.parametrize("campaign_id", [*HOSTILE, "winback\n", "Winback", "a" * 49])
def test_a_hostile_campaign_id_is_refused_naming_its_line(tmp_path: Path, campaign_id: str) -> None:
    path = tmp_path / "playbook.yaml"
    # a JSON string is a YAML double-quoted scalar: any character can be written
    path.write_text(f"seed: 1\ncampaigns:\n  - id: {json.dumps(campaign_id)}\n    channel: email\n")
    with pytest.raises(PlaybookError) as raised:
        load_playbook(path)
    assert f"{path}:3: id {campaign_id!r} must be lower-case letters" in str(raised.value)


def test_a_campaign_id_that_skipped_validation_writes_nothing_outside_the_export_folder(
    activated: Settings, tmp_path: Path
) -> None:
    book = load_playbook(activated.playbook_path)
    hostile = replace(book, campaigns=(replace(book.campaigns[0], id="../../escaped"),))
    folders = ExportFolders(export_dir=str(tmp_path / "exports" / "a"))
    with (
        warehouse_for(activated).connection() as conn,
        pytest.raises(UnsafeNameError, match=r"export file: '\.\.' is not a plain file name"),
    ):
        export_day(conn, ACTIVATION_START, hostile, folders)
    # the day's folder was never swapped in; nothing at all outside it
    assert _files(tmp_path) <= {tmp_path / "exports", tmp_path / "exports" / "a"}


def test_a_day_folder_linked_outside_the_export_folder_is_refused(
    activated: Settings, tmp_path: Path
) -> None:
    outside, exports = tmp_path / "outside", tmp_path / "exports"
    outside.mkdir()
    exports.mkdir()
    (exports / ACTIVATION_START.isoformat()).symlink_to(outside)
    book = load_playbook(activated.playbook_path)
    with (
        warehouse_for(activated).connection() as conn,
        pytest.raises(UnsafeNameError, match="leads outside"),
    ):
        export_day(conn, ACTIVATION_START, book, ExportFolders(export_dir=str(exports)))
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("delivery", ["exports", "exports/delivery", "."])
def test_delivery_folder_overlapping_the_export_folder_is_refused(
    activated: Settings, tmp_path: Path, delivery: str
) -> None:
    """Personal data must not land among the pseudonymous files (or replace them)."""
    export_dir, delivery_dir = tmp_path / "exports", tmp_path / delivery
    env = {"SEG_DATA_DIR": str(tmp_path), "SEG_DELIVERY_DIR": str(delivery_dir)}
    with pytest.raises(UnsafeNameError, match="must be separate folders"):
        Settings.from_env(env)
    folders = ExportFolders(export_dir=str(export_dir), delivery_dir=str(delivery_dir))
    book = load_playbook(activated.playbook_path)
    with (
        warehouse_for(activated).connection() as conn,
        pytest.raises(UnsafeNameError, match="must be separate folders"),
    ):
        export_day(conn, ACTIVATION_START, book, folders)
    assert _files(tmp_path) == set()


# -- settings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "start",
    ["2026-01-01'; DROP TABLE raw_orders; --", "../2026-01-01", "2026-13-01", "20260101", " "],
)
def test_a_malformed_first_partition_is_refused_naming_the_variable(start: str) -> None:
    with pytest.raises(UnsafeNameError, match="SEG_PARTITIONS_START must be a day as YYYY-MM-DD"):
        Settings.from_env({"SEG_PARTITIONS_START": start})


@pytest.mark.parametrize(
    "variable",
    ["SEG_DATA_DIR", "SEG_LANDING_DIR", "SEG_WAREHOUSE", "SEG_EXPORT_DIR", "SEG_DELIVERY_DIR"],
)
@pytest.mark.parametrize("value", ["data/new\nline", "data/nul\x00byte", "data/esc\x1b[2J"])
def test_a_folder_setting_with_a_control_character_is_refused(variable: str, value: str) -> None:
    with pytest.raises(UnsafeNameError, match=f"{variable} holds a control character"):
        Settings.from_env({variable: value})


# -- source names and landing paths --------------------------------------------------------


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_source_name_is_refused(name: str) -> None:
    with pytest.raises(UnsafeNameError, match="source name"):
        replace(ORDERS, name=name)


def test_a_hostile_source_column_is_refused() -> None:
    with pytest.raises(UnsafeNameError, match="source orders: column 'a\"; DROP TABLE x; --'"):
        replace(ORDERS, columns=(*ORDERS.columns, 'a"; DROP TABLE x; --'))


def test_landing_paths_stay_inside_the_landing_folder(tmp_path: Path) -> None:
    for source in SOURCES:
        path = source.path_for(tmp_path, date(2026, 1, 31))
        assert path.parent.parent == tmp_path
        assert path.name == f"2026-01-31.{source.extension}"


@pytest.mark.parametrize("part", ["..", "../x", "/etc/passwd", ".hidden", "a\nb", "a'b", ""])
def test_path_under_refuses_what_could_leave_its_folder(tmp_path: Path, part: str) -> None:
    with pytest.raises(UnsafeNameError, match="not a plain file name"):
        path_under(tmp_path, part, what="test file")


# -- partition keys ------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["../../etc/passwd", "2026-01-01'; DROP TABLE raw_orders; --"])
@pytest.mark.parametrize("how", ["partition", "range"])
def test_a_hostile_partition_key_never_reaches_a_step(
    settings: Settings, key: str, how: str
) -> None:
    """Dagster refuses a key its daily partitions do not have before any step runs; a step
    sees a day only as a date (``partitions.window_dates``)."""
    job = build_definitions(settings).resolve_job_def(DAILY_JOB_NAME)
    tags = {ASSET_PARTITION_RANGE_START_TAG: key, ASSET_PARTITION_RANGE_END_TAG: key}
    try:
        result = job.execute_in_process(
            instance=DagsterInstance.ephemeral(),
            partition_key=key if how == "partition" else None,
            tags=tags if how == "range" else None,
            asset_selection=[AssetKey("raw_orders")],
            raise_on_error=False,
        )
    except Exception as error:  # refused before the run starts
        assert key in str(error)
    else:
        assert not result.success
        started = [e for e in result.all_events if e.event_type_value == "STEP_START"]
        assert started == []
    assert not settings.warehouse_path.exists()  # no step opened the warehouse


# -- table and column names in SQL ---------------------------------------------------------


@pytest.mark.parametrize("table", ["t; DROP TABLE victim; --", 'victim"', "victim --", "a.b.c"])
def test_sql_helpers_refuse_a_table_name_that_is_not_a_plain_name(
    tmp_path: Path, table: str
) -> None:
    warehouse = warehouse_for(replace(Settings.from_env({}), warehouse_path=tmp_path / "w.db"))
    frame = pl.DataFrame({"as_of_date": [MONTH_START], "x": [1]})
    with warehouse.connection() as conn:
        conn.execute("CREATE TABLE victim AS SELECT 1 AS x")
        for call in (
            lambda: replace_window(conn, table, "SELECT 1 AS x", {}, "x", MONTH_START, MONTH_START),
            lambda: write_frame(conn, table, frame, "as_of_date", MONTH_START),
            lambda: table_columns(conn, table),
            lambda: drop_tables(conn, table),
        ):
            with pytest.raises(UnsafeNameError, match="is not a plain SQL name"):
                call()
        with pytest.raises(UnsafeNameError), registered(conn, table, frame):
            pass
        with pytest.raises(UnsafeNameError, match="partition column"):
            write_frame(conn, "fine", frame, "as_of_date; DROP TABLE victim", MONTH_START)
        assert conn.execute("SELECT x FROM victim").fetchall() == [(1,)]
        assert [r[0] for r in conn.execute("SHOW TABLES").fetchall()] == ["victim"]
