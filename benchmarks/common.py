"""What the benchmarks share: running one step in a child process and measuring it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

# Benchmarks run on generated data only: a fixed key-encryption key for the vault (32 bytes as
# hex), used unless SEG_VAULT_KEY is set.
BENCH_VAULT_KEY = "62656e63682d7661756c742d6b65792d6e6f742d612d7365637265742d2d2d2d"


def bench_vault_key() -> str:
    return os.environ.get("SEG_VAULT_KEY") or BENCH_VAULT_KEY


def run_child(
    module: str, args: list[str], env: dict[str, str] | None = None
) -> tuple[dict, float, float]:
    """Run ``python -m module *args`` and measure it.

    Returns the child's last stdout line parsed as JSON, its wall seconds (start-up included)
    and its own peak resident memory in MB (``os.wait4`` reports that child's ``ru_maxrss``).
    """
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", module, *args], env=env, stdout=subprocess.PIPE, text=True
    )
    out = proc.stdout.read() if proc.stdout else ""  # read before waiting: no pipe dead-lock
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{module} {' '.join(args)} failed")
    return json.loads(out.strip().splitlines()[-1]), wall, usage.ru_maxrss / 1024
