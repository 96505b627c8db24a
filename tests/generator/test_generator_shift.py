"""The generator's shift from a given day: deterministic, nothing changes before the shift day,
and the change is the one asked for."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from tests.generator.conftest import START, make_world

END = date(2026, 1, 6)
SHIFT = date(2026, 1, 4)
BASE = {"end_date": END, "n_customers": 600, "seed": 9, "messiness": 0.0}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _orders(landing: Path, day: date) -> int:
    return pl.read_csv(landing / "orders" / f"{day.isoformat()}.csv").height


def test_a_behaviour_shift_changes_the_days_from_the_shift_only(tmp_path: Path) -> None:
    plain = make_world(tmp_path / "plain", **BASE)
    shifted = make_world(
        tmp_path / "shifted", shift_date=SHIFT, shift_kind="order_rate", shift_factor=0.3, **BASE
    )
    again = make_world(
        tmp_path / "again", shift_date=SHIFT, shift_kind="order_rate", shift_factor=0.3, **BASE
    )
    for path in sorted(shifted.landing.rglob("*.*")):
        name = path.relative_to(shifted.landing)
        assert _digest(path) == _digest(again.landing / name), name  # deterministic
        if date.fromisoformat(path.stem) < SHIFT:
            assert _digest(path) == _digest(plain.landing / name), name
    after = (SHIFT, date(2026, 1, 5), END)
    assert sum(_orders(shifted.landing, d) for d in after) < 0.5 * sum(
        _orders(plain.landing, d) for d in after
    )


def test_a_persona_mix_shift_turns_a_share_of_customers(tmp_path: Path) -> None:
    plain = make_world(tmp_path / "plain", **BASE)
    shifted = make_world(
        tmp_path / "shifted",
        shift_date=SHIFT,
        shift_kind="persona_mix",
        shift_persona="bargain_hunter",
        shift_share=0.5,
        **BASE,
    )
    share = {
        name: pl.read_parquet(w.truth / "customers.parquet")["persona"].eq("bargain_hunter").mean()
        for name, w in (("plain", plain), ("shifted", shifted))
    }
    assert share["shifted"] > share["plain"] + 0.3  # half of the others turned


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"shift_date": START}, "shift_date"),
        ({"shift_date": SHIFT, "shift_kind": "weather"}, "shift_kind"),
        ({"shift_date": SHIFT, "shift_factor": 0.0}, "shift_factor"),
        ({"shift_date": SHIFT, "shift_kind": "persona_mix", "shift_share": 0.0}, "shift_share"),
    ],
)
def test_inconsistent_shifts_are_refused(tmp_path: Path, changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_world(tmp_path, **(BASE | changes))
