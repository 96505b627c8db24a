"""Same configuration, same bytes; a day's file does not depend on end_date."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path

from seg_pipeline.sources import SOURCES
from tests.generator.conftest import START, make_world


def _hashes(landing: Path) -> dict[str, str]:
    return {
        str(p.relative_to(landing)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(landing.rglob("*"))
        if p.is_file()
    }


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    kw = {"end_date": date(2026, 1, 4), "n_customers": 400, "seed": 3, "messiness": 0.05}
    a = make_world(tmp_path / "a", **kw)
    b = make_world(tmp_path / "b", **kw)
    ha, hb = _hashes(a.landing), _hashes(b.landing)
    assert len(ha) == 4 * len(SOURCES)
    assert ha == hb
    assert _hashes(a.truth)["customers.parquet"] == _hashes(b.truth)["customers.parquet"]
    pa = json.loads((a.truth / "params.json").read_text())
    pb = json.loads((b.truth / "params.json").read_text())
    for p in (pa, pb):
        del p["config"]["landing_dir"], p["config"]["truth_dir"]
    assert pa == pb


def test_different_seed_different_bytes(tmp_path: Path) -> None:
    kw = {"end_date": date(2026, 1, 2), "n_customers": 300, "messiness": 0.02}
    a = _hashes(make_world(tmp_path / "a", seed=1, **kw).landing)
    b = _hashes(make_world(tmp_path / "b", seed=2, **kw).landing)
    assert a.keys() == b.keys()
    # reviews and sends can legitimately be empty on both of the first two days
    busy = [k for k in a if k.split("/")[0] in ("crm_customers", "orders", "web_events")]
    assert len(busy) == 6
    assert all(a[k] != b[k] for k in busy)


def test_day_does_not_depend_on_end_date(tmp_path: Path) -> None:
    kw = {"n_customers": 500, "seed": 5, "messiness": 0.05, "web_events_per_day": 3000}
    short = make_world(tmp_path / "short", end_date=date(2026, 1, 3), **kw)
    long = make_world(tmp_path / "long", end_date=date(2026, 1, 8), **kw)
    hs, hl = _hashes(short.landing), _hashes(long.landing)
    assert len(hs) == 3 * len(SOURCES)
    assert len(hl) == 8 * len(SOURCES)
    for name, digest in hs.items():
        assert hl[name] == digest, name
    # and the rows summary of the shared days agree
    for source in short.summary.rows:
        for day, n in short.summary.rows[source].items():
            assert long.summary.rows[source][day] == n
    assert START in short.summary.rows["orders"]
