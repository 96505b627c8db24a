"""A few hand-written rows through the real loaders and staging SQL, without Dagster.

Row rules do not need a whole Dagster run on a generated month: a test writes a tiny landing
file, loads it with :func:`seg_pipeline.ingest.loaders.load_file` and stages it with
:func:`seg_pipeline.staging.stage.stage_window`, on a DuckDB file of its own (``tmp_path``)
opened through the :class:`~seg_pipeline.resources.Warehouse` resource, exactly as the assets
do. Each call takes milliseconds instead of the seconds of a run.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from seg_pipeline.ingest.loaders import LoadResult, delete_window, ensure_raw_tables, load_file
from seg_pipeline.privacy.vault import Vault
from seg_pipeline.quality.quarantine import QualityPolicy
from seg_pipeline.resources import Warehouse, read_sql, transaction
from seg_pipeline.sources import CRM_CUSTOMERS, SOURCES_BY_NAME, Source
from seg_pipeline.staging.models import MODELS_BY_NAME
from seg_pipeline.staging.stage import StageOutcome, stage_window
from tests.conftest import TEST_KEY, TEST_VAULT_KEY


def crm_row(customer_id: str = "C1", day: date = date(2026, 1, 3), **fields: str) -> dict:
    """A valid CRM row of ``customer_id`` updated on ``day`` (override any field)."""
    row = {
        "customer_id": customer_id,
        "email": f"{customer_id.lower()}@example.com",
        "phone": "+49 30 1234567",
        "first_name": "Ann",
        "last_name": "Lee",
        "birth_date": "1990-04-01",
        "gender": "F",
        "country": "DE",
        "city": "Berlin",
        "signup_date": "2025-06-01",
        "marketing_consent": "true",
        "updated_at": f"{day.isoformat()} 10:00:00",
    }
    return {**row, **fields}


def order_row(order_id: str = "O1", day: date = date(2026, 1, 3), **fields: str) -> dict:
    row = {
        "order_id": order_id,
        "line_number": "1",
        "customer_id": "C1",
        "ordered_at": f"{day.isoformat()}T14:22:10+01:00",
        "product_id": "P1",
        "category": "home",
        "quantity": "2",
        "unit_price": "9.99",
        "discount": "0.00",
        "channel": "web",
        "status": "completed",
    }
    return {**row, **fields}


def web_event_row(event_id: str = "E1", day: date = date(2026, 1, 3), **fields: Any) -> dict:
    row = {
        "event_id": event_id,
        "session_id": "S1",
        "customer_id": "C1",
        "anonymous_id": None,
        "occurred_at": f"{day.isoformat()}T13:22:10.123Z",
        "event_type": "page_view",
        "url": "/home",
        "product_id": None,
        "device": "mobile",
        "referrer": "direct",
    }
    return {**row, **fields}


def review_row(review_id: str = "R1", day: date = date(2026, 1, 3), **fields: Any) -> dict:
    row = {
        "review_id": review_id,
        "customer_id": "C1",
        "product_id": "P1",
        "reviewed_at": f"{day.isoformat()}T10:00:00+01:00",
        "rating": 5,
        "review_text": "Great.",
    }
    return {**row, **fields}


def csv_text(source: Source, rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(source.columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def jsonl_text(rows: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def load_day(
    warehouse: Warehouse,
    source: Source,
    path: Path,
    day: date,
    policy: QualityPolicy,
    vault: Vault | None = None,
) -> LoadResult:
    """What the raw asset does for one day: replace the day's rows with the file's, in one
    transaction (an error leaves the warehouse as it was); personal columns go to ``vault``
    (default: ``vault/vault.duckdb`` beside the warehouse)."""
    vault = vault or vault_beside(warehouse)
    with warehouse.connection() as conn, vault.attached(conn) as sealed, transaction(conn):
        ensure_raw_tables(conn, source)
        delete_window(conn, source, day, day)
        return load_file(conn, source, path, day, policy.max_wrong_day_share, vault=sealed)


def vault_beside(warehouse: Warehouse) -> Vault:
    """The vault at its default place beside ``warehouse``, with the tests' key."""
    path = Path(warehouse.database).parent / "vault" / "vault.duckdb"
    return Vault(path=str(path), key_encryption_key=TEST_VAULT_KEY)


def stage_days(
    warehouse: Warehouse, name: str, start: date, end: date, policy: QualityPolicy
) -> StageOutcome:
    """What the staging asset ``name`` does for [start, end]."""
    model = MODELS_BY_NAME[name]
    with warehouse.connection() as conn:
        return stage_window(
            conn,
            sql=read_sql(model.sql_name),
            table=model.table,
            source=model.quarantine_source,
            start=start,
            end=end,
            policy=policy,
        )


@dataclass
class MiniHouse:
    """A landing folder and a warehouse file of one test."""

    root: Path
    policy: QualityPolicy = field(default_factory=QualityPolicy)

    @property
    def warehouse(self) -> Warehouse:
        database = str(self.root / "warehouse.duckdb")
        return Warehouse(database=database, pseudonymisation_key=TEST_KEY)

    def path(self, source: Source, day: date) -> Path:
        return source.path_for(self.root / "landing", day)

    def deliver(self, source: Source, day: date, content: str | bytes | list[dict]) -> Path:
        """Write the landing file of ``source`` for ``day`` (rows in the source's format)."""
        path = self.path(source, day)
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, list):
            if source.file_format == "csv":
                content = csv_text(source, content)
            elif source.file_format == "jsonl":
                content = jsonl_text(content)
            else:
                pl.DataFrame(content).write_parquet(path)
                return path
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
        return path

    def load(self, source: Source, day: date) -> LoadResult:
        """The raw asset's work for one day: replace the day's rows with the file's."""
        return load_day(self.warehouse, source, self.path(source, day), day, self.policy)

    def stage(self, name: str, day: date, end: date | None = None) -> StageOutcome:
        """The staging asset ``name``'s work for [day, end]."""
        return stage_days(self.warehouse, name, day, end or day, self.policy)

    def run(self, day: date, **files: str | bytes | list[dict]) -> dict[str, StageOutcome]:
        """Deliver, load and stage the given sources' files of ``day`` (CRM first); sources
        not given are not touched."""
        outcomes = {}
        for name, content in sorted(files.items(), key=lambda kv: kv[0] != CRM_CUSTOMERS.name):
            source = SOURCES_BY_NAME[name]
            self.deliver(source, day, content)
            self.load(source, day)
            outcomes[name] = self.stage(source.staging_table, day)
        return outcomes

    def rows(self, sql: str, params: dict | None = None) -> list[dict]:
        with self.warehouse.connection() as conn:
            frame = conn.sql(sql, params=params or {}).pl()
        return frame.to_dicts()

    def opened(self, customer_id: str) -> list[dict]:
        """Every vault record of ``customer_id``, opened (clear values)."""
        warehouse = self.warehouse
        with warehouse.connection() as conn, vault_beside(warehouse).attached(conn) as sealed:
            return sealed.read_customer(customer_id).to_dicts()

    def quarantined(self, table: str, day: date | None = None) -> list[dict]:
        return self.rows(
            "SELECT rule, reason, source_file, line_number, raw_record FROM quarantine "
            "WHERE table_name = $t AND ($d IS NULL OR arrival_date = $d) ORDER BY line_number",
            {"t": table, "d": day},
        )
