"""A calibrated classifier of one target, and how it is fitted from point-in-time rows.

:class:`ScoreModel` holds what scoring needs: the target, the input columns, the vocabulary of
each categorical input, the fitted scikit-learn estimator and its calibrator. Inputs become a
float matrix the same way at fit and score time (:meth:`ScoreModel.matrix`): numbers as they
are (missing values stay NaN, which gradient boosting routes natively and the linear
candidate imputes with a missing-indicator column inside its pipeline), a categorical input as
the index of its value in the training vocabulary (unseen or missing: NaN), split natively by
gradient boosting and one-hot encoded by the linear candidate.

Calibration: the candidate's out-of-fold probabilities on the training rows (folds grouped by
customer, so no customer is on both sides) fit an isotonic and a sigmoid (Platt) calibrator;
the one with the lower Brier score on the validation cut-off is kept. The estimator itself is
refitted on all training rows. scikit-learn is imported inside the functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import numpy as np
import polars as pl

from seg_pipeline.predictive.config import CATEGORICAL_FEATURES, NOT_FEATURES, Family, Target

CALIBRATION_FOLDS = 3
MAX_CATEGORIES = 250  # below HistGradientBoosting's 255 bins for categorical splits
EPS = 1e-6


def input_columns(frame: pl.DataFrame, excluded: set[str]) -> tuple[list[str], list[str]]:
    """(numeric, categorical) model inputs among ``frame``'s columns, in table order."""
    numeric, categorical = [], []
    for name, dtype in frame.schema.items():
        if name in NOT_FEATURES or name in excluded or name.startswith("_"):
            continue
        if name in CATEGORICAL_FEATURES or dtype == pl.String:
            categorical.append(name)
        elif dtype.is_numeric() or dtype == pl.Boolean:
            numeric.append(name)
    return numeric, categorical


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1 - EPS)
    return np.log(p / (1 - p))


def _estimator(family: Family, n_numeric: int, n_categorical: int, seed: int) -> Any:
    """An unfitted candidate taking the matrix of :meth:`ScoreModel.matrix`."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, QuantileTransformer

    numeric = list(range(n_numeric))
    categorical = list(range(n_numeric, n_numeric + n_categorical))
    if family == "hist_gradient_boosting":
        return HistGradientBoostingClassifier(
            categorical_features=categorical or None,
            max_iter=300,
            learning_rate=0.08,
            early_stopping=True,
            validation_fraction=0.1,
            n_iter_no_change=20,
            random_state=seed,
        )
    if family == "logistic_regression":
        columns = ColumnTransformer(
            [
                (
                    "numeric",
                    make_pipeline(
                        SimpleImputer(
                            strategy="median", add_indicator=True, keep_empty_features=True
                        ),
                        QuantileTransformer(
                            n_quantiles=200, output_distribution="normal", random_state=seed
                        ),
                    ),
                    numeric,
                ),
                (
                    "categorical",
                    make_pipeline(
                        SimpleImputer(strategy="constant", fill_value=-1),
                        OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                    ),
                    categorical,
                ),
            ],
            sparse_threshold=0.0,
        )
        return make_pipeline(
            columns, LogisticRegression(C=1.0, solver="newton-cholesky", max_iter=200)
        )
    raise ValueError(f"unknown model family {family!r}")


@dataclass
class ScoreModel:
    """A fitted, calibrated model of one target (see the module docstring)."""

    kind: ClassVar[str] = "predictive"  # the subclass of each target names its model-store kind

    target: Target
    family: Family
    numeric: list[str]
    categorical: list[str]
    vocabulary: dict[str, list[str]]
    estimator: Any
    calibration: str  # "isotonic" or "sigmoid"
    calibrator: Any
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    def matrix(self, frame: pl.DataFrame) -> np.ndarray:
        """The float input matrix of ``frame``'s rows (columns: numeric, then categorical)."""
        parts = [
            pl.col(c).cast(pl.Float64) if frame.schema[c] == pl.Boolean else pl.col(c)
            for c in self.numeric
        ]
        out = (
            frame.select(parts).cast(pl.Float64).to_numpy()
            if parts
            else np.empty((frame.height, 0))
        )
        codes = []
        for c in self.categorical:
            index = {v: i for i, v in enumerate(self.vocabulary[c])}
            values = frame[c].to_list()
            codes.append(np.array([index.get(v, np.nan) for v in values], dtype=float))
        if codes:
            out = np.column_stack([out, *codes])
        return np.ascontiguousarray(out, dtype=np.float64)

    def raw_probability(self, x: np.ndarray) -> np.ndarray:
        return self.estimator.predict_proba(x)[:, 1]

    def calibrate(self, raw: np.ndarray) -> np.ndarray:
        if self.calibration == "isotonic":
            return np.clip(self.calibrator.predict(raw), 0.0, 1.0)
        return self.calibrator.predict_proba(_logit(raw).reshape(-1, 1))[:, 1]

    def predict(self, frame: pl.DataFrame) -> np.ndarray:
        """Calibrated probability of the target for each row of ``frame``."""
        return self.calibrate(self.raw_probability(self.matrix(frame)))

    def to_state(self) -> dict[str, Any]:
        return {
            "target": {
                "name": self.target.name,
                "horizon_days": self.target.horizon_days,
                "score_column": self.target.score_column,
            },
            "family": self.family,
            "numeric": list(self.numeric),
            "categorical": list(self.categorical),
            "vocabulary": {k: list(v) for k, v in self.vocabulary.items()},
            "estimator": self.estimator,
            "calibration": self.calibration,
            "calibrator": self.calibrator,
            "info": self.info,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        return cls(**{**state, "target": Target(**state["target"])})


class ChurnModel(ScoreModel):
    kind: ClassVar[str] = "churn"


class PurchaseModel(ScoreModel):
    kind: ClassVar[str] = "purchase"


MODEL_CLASSES: dict[str, type[ScoreModel]] = {"churn": ChurnModel, "purchase": PurchaseModel}


def _vocabulary(frame: pl.DataFrame, categorical: list[str]) -> dict[str, list[str]]:
    out = {}
    for c in categorical:
        counts = frame[c].drop_nulls().value_counts(sort=True)
        out[c] = sorted(counts[c].head(MAX_CATEGORIES).to_list())
    return out


def _fit_calibrators(oof: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import LogisticRegression

    return {
        "isotonic": IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(oof, y),
        "sigmoid": LogisticRegression(C=1e6, max_iter=1000).fit(_logit(oof).reshape(-1, 1), y),
    }


def fit_candidate(
    family: Family,
    target: Target,
    train: pl.DataFrame,
    y_train: np.ndarray,
    valid: pl.DataFrame,
    y_valid: np.ndarray,
    *,
    excluded: set[str],
    seed: int,
) -> ScoreModel:
    """One candidate fitted on ``train`` and calibrated (method chosen on ``valid``).

    ``train`` and ``valid`` are rows of ``sql/predictive/training_rows.sql``; folds for the
    out-of-fold probabilities are grouped by ``customer_id``.
    """
    from sklearn.base import clone
    from sklearn.metrics import brier_score_loss
    from sklearn.model_selection import GroupKFold, cross_val_predict

    numeric, categorical = input_columns(train, excluded)
    model = MODEL_CLASSES[target.name](
        target=target,
        family=family,
        numeric=numeric,
        categorical=categorical,
        vocabulary=_vocabulary(train, categorical),
        estimator=_estimator(family, len(numeric), len(categorical), seed),
        calibration="isotonic",
        calibrator=None,
    )
    x = model.matrix(train)
    oof = cross_val_predict(
        clone(model.estimator),
        x,
        y_train,
        groups=train["customer_id"].to_numpy(),
        cv=GroupKFold(n_splits=CALIBRATION_FOLDS),
        method="predict_proba",
    )[:, 1]
    model.estimator.fit(x, y_train)
    raw_valid = model.raw_probability(model.matrix(valid))
    briers = {}
    for method, calibrator in _fit_calibrators(oof, y_train).items():
        model.calibration, model.calibrator = method, calibrator
        briers[method] = brier_score_loss(y_valid, model.calibrate(raw_valid))
    model.calibration = min(briers, key=briers.get)
    model.calibrator = _fit_calibrators(oof, y_train)[model.calibration]
    model.info["validation_brier_by_calibration"] = {k: float(v) for k, v in briers.items()}
    return model
