"""Faker is an optional extra: without it the generator says how to install it."""

from __future__ import annotations

import sys

import pytest

from seg_pipeline.generator.catalogue import build_people_pools


def test_generator_without_faker_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "faker", None)  # `import faker` now raises ImportError
    with pytest.raises(ImportError, match=r"seg-pipeline\[generator\]"):
        build_people_pools(seed=1)


def test_generator_with_faker_fills_the_pools() -> None:
    pools = build_people_pools(seed=1, n_first=20, n_last=20)
    assert pools.first_names.len() > 0
    assert pools.last_names.len() > 0
    assert pools.cities.len() > 0
