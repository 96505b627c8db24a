"""The generated month's customer features on its last day, with the planted personas."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from seg_pipeline.generator import GenerationSummary
from seg_pipeline.resources import Warehouse, query_frame
from seg_pipeline.segmentation.config import SegmentationConfig
from seg_pipeline.segmentation.preprocess import build_preprocessor, feature_matrix
from seg_pipeline.settings import Settings
from tests.conftest import MONTH_END, TEST_KEY


@pytest.fixture(scope="session")
def month_features(loaded_month: Path) -> pl.DataFrame:
    """customer_features of every customer as of the month's last day, sorted by id."""
    warehouse = Warehouse(database=str(loaded_month), pseudonymisation_key=TEST_KEY)
    with warehouse.connection() as conn:
        return query_frame(
            conn,
            "SELECT * FROM customer_features WHERE as_of_date = ? ORDER BY customer_id",
            [MONTH_END],
        )


@pytest.fixture(scope="session")
def month_personas(
    month: tuple[Settings, GenerationSummary], month_features: pl.DataFrame
) -> np.ndarray:
    """The planted persona of each row of ``month_features`` (read only by evaluation code)."""
    truth = pl.read_parquet(month[0].truth_dir / "customers.parquet")
    joined = month_features.select("customer_id").join(
        truth.select("customer_id", "persona"), on="customer_id", how="left"
    )
    assert joined["persona"].null_count() == 0
    return joined["persona"].to_numpy()


@pytest.fixture(scope="session")
def month_matrix(month_features: pl.DataFrame) -> np.ndarray:
    """``month_features`` preprocessed with the default configuration."""
    config = SegmentationConfig()
    return build_preprocessor(config).fit_transform(feature_matrix(month_features, config))
