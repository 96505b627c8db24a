"""Sealing CRM records into the vault: N records of N customers (a first load: a new data key
each), through ``VaultSession.store_crm_records`` (key creation and wrapping, one AES-GCM
ciphertext per record, the insert), then opening them all again (``read_records``).

``python -m benchmarks.bench_vault --records 1000000`` prints and appends to
``benchmarks/results/vault.jsonl``. Synthetic values of realistic length; no warehouse tables.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

from benchmarks.common import bench_vault_key
from seg_pipeline.privacy.vault import Vault
from seg_pipeline.resources import Warehouse

RESULTS = Path(__file__).parent / "results" / "vault.jsonl"
DAY = date(2026, 1, 1)


def records(n: int) -> pl.DataFrame:
    ids = [f"C{i:08d}" for i in range(n)]
    return pl.DataFrame(
        {
            "customer_id": ids,
            "arrival_date": [DAY] * n,
            "source_file": ["crm_customers/2026-01-01.csv"] * n,
            "record_number": list(range(2, n + 2)),
            "updated_at": ["2026-01-01 10:00:00"] * n,
            "email_hash": ["0" * 64] * n,
            "phone_hash": ["1" * 64] * n,
            "name_hash": ["2" * 64] * n,
            "email": [f"first.last{i}@example.com" for i in range(n)],
            "phone": ["+49 151 23456789"] * n,
            "first_name": ["Maria-Theresia"] * n,
            "last_name": ["Schneider"] * n,
            "birth_date": ["1972-04-04"] * n,
        }
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    args = parser.parse_args()
    frame = records(args.records)
    with tempfile.TemporaryDirectory(prefix="seg-bench-vault-") as tmp:
        vault = Vault(
            path=str(Path(tmp) / "vault" / "vault.duckdb"), key_encryption_key=bench_vault_key()
        )
        warehouse = Warehouse(
            database=str(Path(tmp) / "warehouse.duckdb"), pseudonymisation_key="k"
        )
        with warehouse.connection() as conn, vault.attached(conn) as sealed:
            started = time.perf_counter()
            sealed.store_crm_records(frame, DAY, DAY)
            store = time.perf_counter() - started
            started = time.perf_counter()
            again = sealed.store_crm_records(frame, DAY, DAY)  # a re-run: keys exist
            rerun = time.perf_counter() - started
            started = time.perf_counter()
            opened = sealed.read_records(frame)
            read = time.perf_counter() - started
        assert again == opened.height == args.records
        size = sum(p.stat().st_size for p in (Path(tmp) / "vault").iterdir())
    result = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": platform.node(),
        "records": args.records,
        "first_load_seconds": round(store, 1),
        "rerun_seconds": round(rerun, 1),
        "open_all_seconds": round(read, 1),
        "vault_mb": round(size / 1e6, 1),
    }
    print(json.dumps(result))
    with RESULTS.open("a") as handle:
        handle.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
