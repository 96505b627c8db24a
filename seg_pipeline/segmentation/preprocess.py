"""Feature matrix and the preprocessing Pipeline: impute, log1p the skewed, robust-scale, PCA.

The Pipeline is fitted with the model and stored inside it, so a day's customers are
transformed exactly as the training rows were.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, RobustScaler

from seg_pipeline.segmentation.config import SegmentationConfig


def feature_matrix(frame: pl.DataFrame, config: SegmentationConfig) -> np.ndarray:
    """The configured feature columns of ``frame`` as a float matrix (nulls as NaN).

    ``recency_days`` without an order becomes ``observed_days`` (no order in all the time
    we could see), columns listed in ``config.zero_fill`` get 0 for null, and the
    ``config.log_features`` are cut at 0 from below (their log1p comes next).

    Raises
    ------
    KeyError
        Naming the configured features missing from ``frame``.
    """
    exprs = [
        expr.clip(lower_bound=0.0) if name in config.log_features else expr
        for name, expr in zip(
            config.features,
            filled_columns(frame, config.features, config.zero_fill),
            strict=True,
        )
    ]
    return frame.select(exprs).to_numpy().astype(np.float64, copy=False)


def filled_columns(
    frame: pl.DataFrame, names: Sequence[str], zero_fill: Sequence[str]
) -> list[pl.Expr]:
    """``names`` as Float64 expressions with the nulls that have a meaning filled: NaN becomes
    null, ``recency_days`` without an order ``observed_days``, ``zero_fill`` columns 0. Other
    nulls stay (the caller imputes them).

    Raises
    ------
    KeyError
        Naming the columns missing from ``frame``.
    """
    missing = [c for c in names if c not in frame.columns]
    if missing:
        raise KeyError(
            f"segmentation features missing from customer_features: {missing}; "
            f"available: {sorted(frame.columns)}"
        )
    exprs = []
    for name in names:
        col = pl.col(name).cast(pl.Float64).fill_nan(None)
        if name == "recency_days" and "observed_days" in frame.columns:
            col = col.fill_null(pl.col("observed_days").cast(pl.Float64))
        elif name in zero_fill:
            col = col.fill_null(0.0)
        exprs.append(col.alias(name))
    return exprs


def build_preprocessor(config: SegmentationConfig) -> Pipeline:
    """Unfitted preprocessing: median imputation, log1p on skewed columns, robust scaling, PCA.

    Columns are addressed by position, in ``config.features`` order. Only scikit-learn's own
    classes and NumPy's ``log1p`` appear in it, so a fitted Pipeline is saved by the model
    store without any import path of this project.
    """
    logged = [i for i, f in enumerate(config.features) if f in config.log_features]
    plain = [i for i, f in enumerate(config.features) if f not in config.log_features]
    parts = []
    if logged:
        parts.append(
            (
                "log1p",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                        (
                            "log1p",
                            FunctionTransformer(np.log1p, feature_names_out="one-to-one"),
                        ),
                    ]
                ),
                logged,
            )
        )
    if plain:
        parts.append(("plain", SimpleImputer(strategy="median", keep_empty_features=True), plain))
    steps: list[tuple[str, object]] = [
        ("columns", ColumnTransformer(parts, remainder="drop")),
        ("scale", RobustScaler(quantile_range=tuple(config.scaler_quantile_range))),
    ]
    if config.pca_components:
        steps.append(("pca", PCA(n_components=config.pca_components, random_state=config.seed)))
    return Pipeline(steps)


def transformed_feature_names(config: SegmentationConfig) -> list[str]:
    """Names of the preprocessed columns (PCA components as ``pc1``, ``pc2``, ...)."""
    if config.pca_components:
        return [f"pc{i + 1}" for i in range(config.pca_components)]
    logged = [f for f in config.features if f in config.log_features]
    plain = [f for f in config.features if f not in config.log_features]
    return [f"log1p_{f}" for f in logged] + plain
