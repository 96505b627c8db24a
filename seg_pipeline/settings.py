"""Where things live and which knobs are set, read from the environment.

Every path has a default inside the repository folder (ignored by git), so a fresh clone runs
without any set-up; each can be moved with an environment variable:

- ``SEG_DATA_DIR``: root of generated and loaded data (default ``<repo>/data``)
- ``SEG_LANDING_DIR``: daily source files, ``<source>/<day>.<ext>`` (``$SEG_DATA_DIR/landing``)
- ``SEG_TRUTH_DIR``: generator ground truth, never read by the pipeline (``$SEG_DATA_DIR/truth``)
- ``SEG_WAREHOUSE``: the DuckDB warehouse file (``$SEG_DATA_DIR/warehouse.duckdb``)
- ``SEG_MODEL_DIR``: fitted model artifacts of the model store (``$SEG_DATA_DIR/models``)
- ``SEG_WAREHOUSE_LOCK_TIMEOUT``: seconds a step waits for a warehouse another process holds
  before it gives up naming the holder (600)
- ``SEG_PARTITIONS_START``: first daily partition (``2025-01-01``)
- ``SEG_DUCKDB_MEMORY_LIMIT``, ``SEG_DUCKDB_THREADS``, ``SEG_DUCKDB_TEMP_DIR``: DuckDB's
  ``memory_limit``, ``threads`` and spill folder for every warehouse connection (defaults:
  ``3GB``, measured to keep a day of 10M web events under 4 GiB in all without losing speed;
  DuckDB's own: every core, ``<warehouse>.tmp``)
- ``SEG_PLAYBOOK``: the campaign playbook (YAML; ``<repo>/playbook.yaml``)
- ``SEG_EXPORT_DIR``: audience exports for delivery tools, pseudonymous
  (``$SEG_DATA_DIR/exports``)
- ``SEG_DELIVERY_DIR``: the delivery export with contact fields of consented, treated
  customers; off unless set (the only place personal data leaves the warehouse)
- ``SEG_PSEUDONYMISATION_KEY``: secret key of the keyed hash of personal data; required to run,
  never in the repository
- ``SEG_VAULT``: the vault, the one DuckDB file with clear personal values, encrypted per
  customer (``vault/vault.duckdb`` beside the warehouse; its key store ``vault.keys.duckdb``
  beside it)
- ``SEG_VAULT_KEY``: the key-encryption key of the vault's data keys (32 bytes, hex or base64);
  required to load the CRM and to export contacts, never in the repository or a database
- ``SEG_ALERT_WEBHOOK_URL``: where the run-failure alerts are POSTed (an ``http://`` or
  ``https://`` URL); off unless set: alerts are then only recorded under
  ``$SEG_DATA_DIR/alerts`` (``seg_pipeline/ops/alerts.py``). Treated as a credential (a
  webhook URL often holds a token): never logged or recorded beyond its scheme and host
- ``SEG_RETENTION_DAYS``: landing files and raw rows older than this many days are purged by
  the ``retention`` job (default 730; ``seg_pipeline/privacy/retention.py``)
- ``DAGSTER_HOME``: the Dagster instance (the Makefile sets ``<repo>/.dagster_home``)

Settings are read when definitions are built, never at import time. A path holding a control
character, a first partition that is not a ``YYYY-MM-DD`` day and a delivery folder inside the
export folder (or around it) are refused naming the variable (``docs/security.md``); so is
an alert webhook that is not an http(s) URL with a host (without echoing the value).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from seg_pipeline.names import check_export_folders, iso_day, setting_path
from seg_pipeline.warehouse_lock import lock_timeout_from_env

REPO_ROOT = Path(__file__).resolve().parents[1]
SQL_DIR = REPO_ROOT / "sql"
EXPECTATIONS_DIR = REPO_ROOT / "expectations"

PSEUDONYMISATION_KEY_ENV = "SEG_PSEUDONYMISATION_KEY"
ALERT_WEBHOOK_ENV = "SEG_ALERT_WEBHOOK_URL"
VAULT_KEY_ENV = "SEG_VAULT_KEY"
# Every environment variable holding a secret: read only inside the process that needs it
# (never a Dagster config value, so never in run config, metadata, logs or the UI); the secrets
# test materializes a day and greps the run's whole event log for each of them.
SECRET_SETTINGS: tuple[str, ...] = (PSEUDONYMISATION_KEY_ENV, VAULT_KEY_ENV)
DEFAULT_PARTITIONS_START = "2025-01-01"
# make bench-day (1M customers, 10M web events, 2 cores): no limit 189 s and a 4.4 GB peak of the
# process tree; 3GB 166 s and 3.6 GB; 2GB slower (242 s) as window sorts spill.
DEFAULT_DUCKDB_MEMORY_LIMIT = "3GB"
# What DuckDB's memory_limit accepts: a number and a unit (or a share of the machine's memory).
_MEMORY = re.compile(r"[0-9]+(\.[0-9]+)?\s*([KMGT]i?B|B|%)", re.IGNORECASE)


@dataclass(frozen=True)
class Settings:
    """Paths and run-wide knobs of one deployment."""

    data_dir: Path
    landing_dir: Path
    truth_dir: Path
    warehouse_path: Path
    partitions_start: str
    model_dir: Path
    warehouse_lock_timeout_seconds: float
    duckdb_memory_limit: str = DEFAULT_DUCKDB_MEMORY_LIMIT
    duckdb_threads: int | None = None
    duckdb_temp_dir: Path | None = None
    playbook_path: Path = REPO_ROOT / "playbook.yaml"
    export_dir: Path | None = None
    delivery_dir: Path | None = None
    vault_path: Path | None = None
    retention_days: int = 730
    # repr=False: a webhook URL often holds a token, and a Settings may end up in a traceback
    alert_webhook_url: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read settings from ``environ`` (default: the process environment)."""
        env = os.environ if environ is None else environ
        data_dir = setting_path(env, "SEG_DATA_DIR", REPO_ROOT / "data")
        export_dir = setting_path(env, "SEG_EXPORT_DIR", data_dir / "exports")
        delivery_dir = setting_path(env, "SEG_DELIVERY_DIR", None)
        check_export_folders(export_dir, delivery_dir)
        start = env.get("SEG_PARTITIONS_START") or DEFAULT_PARTITIONS_START
        return cls(
            data_dir=data_dir,
            landing_dir=setting_path(env, "SEG_LANDING_DIR", data_dir / "landing"),
            truth_dir=setting_path(env, "SEG_TRUTH_DIR", data_dir / "truth"),
            warehouse_path=setting_path(env, "SEG_WAREHOUSE", data_dir / "warehouse.duckdb"),
            partitions_start=iso_day(start, "SEG_PARTITIONS_START").isoformat(),
            model_dir=setting_path(env, "SEG_MODEL_DIR", data_dir / "models"),
            warehouse_lock_timeout_seconds=lock_timeout_from_env(env),
            duckdb_memory_limit=_memory_limit(env),
            duckdb_threads=_positive_int(env, "SEG_DUCKDB_THREADS"),
            duckdb_temp_dir=setting_path(env, "SEG_DUCKDB_TEMP_DIR", None),
            playbook_path=setting_path(env, "SEG_PLAYBOOK", REPO_ROOT / "playbook.yaml"),
            export_dir=export_dir,
            delivery_dir=delivery_dir,
            vault_path=setting_path(env, "SEG_VAULT", None),
            alert_webhook_url=_webhook_url(env),
            retention_days=_positive_int(env, "SEG_RETENTION_DAYS") or cls.retention_days,
        )

    @property
    def alerts_dir(self) -> Path:
        """Where the run-failure alerts are recorded: ``<data dir>/alerts``."""
        return self.data_dir / "alerts"

    @property
    def vault_file(self) -> Path:
        """The vault's DuckDB file: ``SEG_VAULT``, by default ``vault/vault.duckdb`` beside the
        warehouse (``<data dir>/vault/vault.duckdb``), so a warehouse and its vault go together."""
        return self.vault_path or self.warehouse_path.parent / "vault" / "vault.duckdb"

    def duckdb_config(self) -> dict[str, str | int]:
        """The DuckDB settings every warehouse connection opens with (only those set)."""
        tuning = {
            "memory_limit": self.duckdb_memory_limit,
            "threads": self.duckdb_threads,
            "temp_directory": str(self.duckdb_temp_dir) if self.duckdb_temp_dir else None,
        }
        return {name: value for name, value in tuning.items() if value is not None}


def _memory_limit(env: Mapping[str, str]) -> str:
    value = (env.get("SEG_DUCKDB_MEMORY_LIMIT") or DEFAULT_DUCKDB_MEMORY_LIMIT).strip()
    if not _MEMORY.fullmatch(value):
        raise ValueError(
            f"SEG_DUCKDB_MEMORY_LIMIT must be an amount such as 3GB, 512MiB or 80%, not {value!r}"
        )
    return value


def _positive_int(env: Mapping[str, str], name: str) -> int | None:
    value = (env.get(name) or "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{name} must be a whole number of at least 1, not {value!r}")
    return int(value)


def _webhook_url(env: Mapping[str, str]) -> str | None:
    """The alert webhook: ``None`` when unset or blank; an http(s) URL with a host otherwise.
    The value is never echoed in the error: a webhook URL often holds a token."""
    value = (env.get(ALERT_WEBHOOK_ENV) or "").strip()
    if not value:
        return None
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        valid = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:
        valid = False
    if not valid or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError(
            f"{ALERT_WEBHOOK_ENV} must be an http:// or https:// URL with a host and no spaces "
            "or control characters (the value is not shown: a webhook URL often holds a token)"
        )
    return value
