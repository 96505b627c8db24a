"""DuckDB's memory limit, threads and spill folder from the settings reach every connection."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from seg_pipeline.definitions import build_definitions
from seg_pipeline.settings import Settings
from tests.conftest import MONTH_START, run_range


def test_configured_memory_limit_threads_and_spill_folder_reach_every_connection(
    month, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spill = tmp_path / "spill"
    settings = Settings.from_env(
        {
            "SEG_DATA_DIR": str(month[0].data_dir),
            "SEG_WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
            "SEG_MODEL_DIR": str(tmp_path / "models"),
            "SEG_PARTITIONS_START": MONTH_START.isoformat(),
            "SEG_DUCKDB_MEMORY_LIMIT": "1GiB",
            "SEG_DUCKDB_THREADS": "1",
            "SEG_DUCKDB_TEMP_DIR": str(spill),
        }
    )
    seen: list[tuple[str, int, str]] = []
    connect = duckdb.connect

    def recording_connect(*args, **kwargs) -> duckdb.DuckDBPyConnection:
        conn = connect(*args, **kwargs)
        seen.append(
            conn.execute(
                "SELECT current_setting('memory_limit'), current_setting('threads'), "
                "current_setting('temp_directory')"
            ).fetchone()
        )
        return conn

    monkeypatch.setattr(duckdb, "connect", recording_connect)
    # Loaders (the CRM's attaches the vault to its connection), staging models, a feature table
    # and their GX checks: each step opens its own connection through the warehouse resource.
    assets = ["raw_orders", "stg_orders", "raw_crm_customers", "stg_crm_customers"]
    assets += ["raw_web_events", "stg_web_events", "web_session_fragments"]
    result = run_range(build_definitions(settings), MONTH_START, MONTH_START, assets=assets)
    assert result.success
    steps = {e.step_key for e in result.all_events if e.event_type_value == "STEP_SUCCESS"}
    assert any("expectations" in step for step in steps)
    assert len(seen) >= len(steps) >= len(assets)
    assert set(seen) == {("1.0 GiB", 1, str(spill))}


def test_duckdb_settings_are_checked_when_read() -> None:
    with pytest.raises(ValueError, match="SEG_DUCKDB_THREADS must be a whole number"):
        Settings.from_env({"SEG_DUCKDB_THREADS": "two"})
    unset = Settings.from_env({})
    assert (unset.duckdb_memory_limit, unset.duckdb_threads, unset.duckdb_temp_dir) == (
        "3GB",
        None,
        None,
    )
    assert unset.duckdb_config() == {"memory_limit": "3GB"}  # else DuckDB's own defaults
