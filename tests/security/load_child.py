"""Load one landing file into a warehouse in a process of its own and print its peak memory.

``python -m tests.security.load_child <warehouse> <source> <file> <YYYY-MM-DD>``: what the raw
asset does for one day (:func:`tests.quality.minihouse.load_day`), then one JSON line with the
process's peak resident memory (``ru_maxrss``), so a test can bound the memory a hostile file
costs without counting its own.
"""

from __future__ import annotations

import json
import resource
import sys
from datetime import date
from pathlib import Path

from seg_pipeline.quality.quarantine import QualityPolicy
from seg_pipeline.resources import Warehouse
from seg_pipeline.sources import SOURCES_BY_NAME
from tests.conftest import TEST_KEY
from tests.quality.minihouse import load_day


def main(database: str, source: str, path: str, day: str) -> None:
    warehouse = Warehouse(database=database, pseudonymisation_key=TEST_KEY)
    result = load_day(
        warehouse, SOURCES_BY_NAME[source], Path(path), date.fromisoformat(day), QualityPolicy()
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    print(json.dumps({"peak_rss_bytes": peak, "rows_loaded": result.rows_loaded}))


if __name__ == "__main__":
    main(*sys.argv[1:5])
