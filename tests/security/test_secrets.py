"""Secrets never leave the process that uses them.

A real Dagster instance (a tmp DAGSTER_HOME with the project's dagster.yaml) materializes a
generated day with known secret values, then runs that fail: a malformed setting and a missing
landing file. Every trace of those runs (each event of the event log with its metadata and
errors, the runs' config and tags, every file of the instance, compute logs included, the
console output) and the warehouse file are searched for each secret of
``settings.SECRET_SETTINGS`` in plain, hex and base64 form, and for the pseudonymisation key
as the HMAC pads the ``pseudonymize`` macro holds. Adding a secret setting to that tuple adds
it here.
"""

from __future__ import annotations

import base64
import secrets
import shutil
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from dagster import DagsterInstance
from dagster._serdes import serialize_value

from seg_pipeline.definitions import build_definitions
from seg_pipeline.ops.runs import run_daily_range
from seg_pipeline.settings import PSEUDONYMISATION_KEY_ENV, REPO_ROOT, SECRET_SETTINGS, Settings
from seg_pipeline.sources import SOURCES
from tests.conftest import MONTH_START

ASSETS = [
    *(s.raw_table for s in SOURCES),
    *(s.staging_table for s in SOURCES),
]


def _forms(name: str, value: str) -> dict[str, bytes]:
    """How ``value`` could appear in a log or a file."""
    raw = value.encode()
    forms = {
        "plain": raw,
        "hex": raw.hex().encode(),
        "HEX": raw.hex().upper().encode(),
        "base64": base64.b64encode(raw).rstrip(b"="),
        "base64url": base64.urlsafe_b64encode(raw).rstrip(b"="),
    }
    if name == PSEUDONYMISATION_KEY_ENV:  # the HMAC pads of the key, as the macro writes them
        for pad in (0x36, 0x5C):
            padded = bytes(b ^ pad for b in raw)
            forms[f"pad {pad:#x} hex"] = padded.hex().encode()
            forms[f"pad {pad:#x} literal"] = "".join(f"\\x{b:02x}" for b in padded).encode()
    return forms


def _leaks(found: dict[str, bytes], secret_values: dict[str, str]) -> list[str]:
    return [
        f"{name} ({form}) in {where}"
        for name, value in secret_values.items()
        for form, needle in _forms(name, value).items()
        for where, haystack in found.items()
        if needle in haystack
    ]


def test_secrets_never_appear_in_runs_logs_or_files(
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    # 32 random bytes as hex: a valid key for every secret (the vault key must be 32 bytes)
    secret_values = {name: secrets.token_hex(32) for name in SECRET_SETTINGS}
    for name, value in secret_values.items():
        monkeypatch.setenv(name, value)
    day = MONTH_START  # the first day: every row it refers to is in its own files

    with DagsterInstance.get() as instance:
        good = run_daily_range(build_definitions(settings), day, day, instance, assets=ASSETS)
        assert good.success
        # a setting that passed no check (SEG_DUCKDB_MEMORY_LIMIT is checked when read)
        malformed = replace(settings, duckdb_memory_limit="lots of it")
        bad_setting = run_daily_range(
            build_definitions(malformed), day, day, instance, raise_on_error=False, assets=ASSETS
        )
        assert not bad_setting.success
        undelivered = day + timedelta(days=100)  # after the generated month: no files
        no_file = run_daily_range(
            build_definitions(settings),
            undelivered,
            undelivered,
            instance,
            raise_on_error=False,
            assets=ASSETS,
        )
        assert not no_file.success
        found: dict[str, bytes] = {}
        for result in (good, bad_setting, no_file):
            run_id = result.run_id
            found[f"run {run_id} record"] = serialize_value(instance.get_run_by_id(run_id)).encode()
            found[f"run {run_id} events"] = "\n".join(
                serialize_value(entry) for entry in instance.all_logs(run_id)
            ).encode()
    # the failures are the ones meant: their events say what went wrong
    assert b"'memory_limit': 'lots of it'" in found[f"run {bad_setting.run_id} events"]
    assert b"is missing" in found[f"run {no_file.run_id} events"]
    with settings.warehouse_path.open("rb") as handle:
        found["warehouse file"] = handle.read()
    for path in home.rglob("*"):  # run and event storage, compute logs
        if path.is_file():
            found[f"instance file {path.relative_to(home)}"] = path.read_bytes()
    console = capfd.readouterr()
    found["console"] = (console.out + console.err).encode()
    assert found["run " + good.run_id + " events"].count(b"ASSET_MATERIALIZATION") >= len(ASSETS)
    assert _leaks(found, secret_values) == []
