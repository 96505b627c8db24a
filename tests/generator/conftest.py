"""Fixtures for the generator tests: small generated worlds shared per test session."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from seg_pipeline.generator import GenerationSummary, GeneratorConfig, generate

START = date(2026, 1, 1)


@dataclass
class World:
    config: GeneratorConfig
    summary: GenerationSummary

    @property
    def landing(self) -> Path:
        return self.config.landing_dir

    @property
    def truth(self) -> Path:
        return self.config.truth_dir


def make_world(root: Path, **kwargs: object) -> World:
    params: dict[str, object] = {
        "landing_dir": root / "landing",
        "truth_dir": root / "truth",
        "start_date": START,
        "end_date": START,
    }
    params.update(kwargs)
    config = GeneratorConfig(**params)  # type: ignore[arg-type]
    return World(config, generate(config))


@pytest.fixture(scope="session")
def clean_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """3,000 customers over 30 days without any mess: for behavioural properties."""
    return make_world(
        tmp_path_factory.mktemp("clean"),
        end_date=date(2026, 1, 30),
        n_customers=3000,
        seed=7,
        messiness=0.0,
    )


@pytest.fixture(scope="session")
def messy_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """1,000 customers over 10 days with 5% of each kind of mess."""
    return make_world(
        tmp_path_factory.mktemp("messy"),
        end_date=date(2026, 1, 10),
        n_customers=1000,
        seed=11,
        messiness=0.05,
    )
