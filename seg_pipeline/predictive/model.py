"""A calibrated classifier of one target, how it is fitted from point-in-time rows, and why it
scores a customer as it does.

:class:`ScoreModel` holds what scoring needs: the target, the input columns, the vocabulary of
each categorical input, the fitted scikit-learn estimator and its calibrator. Inputs become a
float matrix the same way at fit and score time (:meth:`ScoreModel.matrix`): numbers as they
are (missing values stay NaN: gradient boosting routes them natively, the linear candidate
imputes them inside its pipeline and adds a missing-indicator column), and a categorical input
as one indicator column per value of its training vocabulary (an unseen or missing value sets
none). Gradient boosting's native categorical splits are not used: shap's exact tree
explanations do not follow them (measured: Shapley values off the prediction by up to 12 in
log-odds), while indicator columns give the same splits one value at a time.

Calibration: the candidate's out-of-fold probabilities on the training rows (folds grouped by
customer, so no customer is on both sides) fit an isotonic and a sigmoid (Platt) calibrator;
the one with the lower Brier score on the validation cut-off is kept. The estimator itself is
refitted on all training rows. Isotonic steps are flat; the raw score (times 1e-6) orders the
rows inside a step, so calibration never costs ranking (ROC AUC).

Reasons (:meth:`ScoreModel.contributions`): exact Shapley values of the uncalibrated model's
log-odds per input, from shap's TreeExplainer for gradient boosting (path-dependent TreeSHAP)
and coefficient times (value - training mean) in the fitted pipeline's space for the linear
model; indicator and missing-indicator columns are added back to the input they came from.
scikit-learn and shap are imported inside the functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import numpy as np
import polars as pl

from seg_pipeline.predictive.config import CATEGORICAL_FEATURES, NOT_FEATURES, Family, Target

CALIBRATION_FOLDS = 3
MAX_CATEGORIES = 30  # most frequent values of a categorical input kept as indicator columns
EPS = 1e-6
TIE_BREAK = 1e-6  # weight of the raw score inside an isotonic step (keeps its ranking)


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


def input_matrix(
    frame: pl.DataFrame,
    numeric: list[str],
    categorical: list[str],
    vocabulary: dict[str, list[str]],
) -> np.ndarray:
    """The float matrix of ``frame``'s rows: the ``numeric`` inputs as they are (missing values
    NaN), then one indicator column per value of each categorical input's ``vocabulary``."""
    numbers = frame.select(pl.col(c).cast(pl.Float64) for c in numeric).to_numpy()
    indicators = frame.select(
        (pl.col(c) == v).fill_null(False).cast(pl.Float64).alias(f"{c}={v}")
        for c in categorical
        for v in vocabulary[c]
    )
    parts = [numbers, indicators.to_numpy()] if indicators.width else [numbers]
    return np.ascontiguousarray(np.column_stack(parts), dtype=np.float64)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1 - EPS)
    return np.log(p / (1 - p))


def _estimator(
    family: Family, n_numeric: int, n_indicators: int, seed: int, increasing: int | None = None
) -> Any:
    """An unfitted candidate taking the matrix of :meth:`ScoreModel.matrix` (``n_numeric``
    numbers, then ``n_indicators`` categorical indicator columns); gradient boosting's score
    never falls as column ``increasing`` grows (the next-order curve's horizon)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import QuantileTransformer

    if family == "hist_gradient_boosting":
        monotonic = None
        if increasing is not None:
            monotonic = [0] * (n_numeric + n_indicators)
            monotonic[increasing] = 1
        return HistGradientBoostingClassifier(
            monotonic_cst=monotonic,
            # small, strongly regularised trees learning slowly: measured better on every
            # target than the defaults, most on rare ones (a campaign converts ~1% of sends);
            # 100 of them score as well as 200 (measured) at half the prediction cost
            max_iter=100,
            learning_rate=0.05,
            max_leaf_nodes=8,
            min_samples_leaf=200,
            l2_regularization=1.0,
            early_stopping=True,
            validation_fraction=0.1,
            n_iter_no_change=10,
            random_state=seed,
        )
    if family == "logistic_regression":
        numbers = make_pipeline(
            SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
            QuantileTransformer(n_quantiles=200, output_distribution="normal", random_state=seed),
        )
        columns = ColumnTransformer(
            [
                ("numeric", numbers, list(range(n_numeric))),
                ("indicators", "passthrough", list(range(n_numeric, n_numeric + n_indicators))),
            ],
            sparse_threshold=0.0,
        )
        linear = LogisticRegression(C=1.0, solver="newton-cholesky", max_iter=200)
        return make_pipeline(columns, linear)
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
        """The inputs, as customer_features columns."""
        return [*self.numeric, *self.categorical]

    @property
    def columns(self) -> list[str]:
        """The matrix columns: the numeric inputs, then ``input=value`` indicator columns."""
        return [
            *self.numeric,
            *(f"{c}={v}" for c in self.categorical for v in self.vocabulary[c]),
        ]

    def column_inputs(self) -> np.ndarray:
        """For each matrix column, the index in :attr:`features` of the input it comes from."""
        out = list(range(len(self.numeric)))
        for i, c in enumerate(self.categorical):
            out += [len(self.numeric) + i] * len(self.vocabulary[c])
        return np.array(out, dtype=np.int64)

    def matrix(self, frame: pl.DataFrame) -> np.ndarray:
        """The float input matrix of ``frame``'s rows (:attr:`columns`)."""
        return input_matrix(frame, self.numeric, self.categorical, self.vocabulary)

    def raw_probability(self, x: np.ndarray) -> np.ndarray:
        return self.estimator.predict_proba(x)[:, 1]

    def calibrate(self, raw: np.ndarray) -> np.ndarray:
        if self.calibration == "isotonic":
            # isotonic regression is flat between its thresholds; the raw score, scaled far
            # below any calibration difference, orders the customers inside a flat step
            return np.clip(self.calibrator.predict(raw) + TIE_BREAK * raw, 0.0, 1.0)
        return self.calibrator.predict_proba(_logit(raw).reshape(-1, 1))[:, 1]

    def predict(self, frame: pl.DataFrame) -> np.ndarray:
        """Calibrated probability of the target for each row of ``frame``."""
        return self.calibrate(self.raw_probability(self.matrix(frame)))

    def predict_at(self, frame: pl.DataFrame, values: tuple[Any, ...]) -> np.ndarray:
        """:meth:`predict` with the target's condition input (a send's channel, the horizon of
        the next-order curve) set to each of ``values`` on every row: one column per value.
        The input matrix is built once and only the condition's columns change."""
        condition = self.target.condition
        assert condition is not None
        x = self.matrix(frame.with_columns(pl.lit(values[0]).alias(condition)))
        names = self.columns
        out = np.empty((len(frame), len(values)))
        for k, value in enumerate(values):
            if condition in self.numeric:
                x[:, names.index(condition)] = float(value)
            else:
                for v in self.vocabulary[condition]:
                    x[:, names.index(f"{condition}={v}")] = float(v == value)
            out[:, k] = self.calibrate(self.raw_probability(x))
        return out

    def expected_days(self, frame: pl.DataFrame) -> np.ndarray:
        """Next-order models: per row of ``frame``, the days after its snapshot by which the
        probability of a completed order reaches one half (linear between the horizons of the
        curve, from 0 on day 0); NaN where it stays under one half up to ``horizon_days``."""
        grid = np.array(self.target.conditions, dtype=float)
        curve = self.predict_at(frame, self.target.conditions)
        curve = np.maximum.accumulate(curve, axis=1)  # a probability of "by day d" never falls
        reached = curve >= 0.5
        first = reached.argmax(axis=1)
        rows = np.arange(len(curve))
        before_day = np.where(first > 0, grid[np.maximum(first - 1, 0)], 0.0)
        before_p = np.where(first > 0, curve[rows, np.maximum(first - 1, 0)], 0.0)
        at_day, at_p = grid[first], curve[rows, first]
        step = np.where(at_p > before_p, (0.5 - before_p) / (at_p - before_p), 1.0)
        days = before_day + np.clip(step, 0.0, 1.0) * (at_day - before_day)
        return np.where(reached.any(axis=1), days, np.nan)

    def contributions(self, frame: pl.DataFrame) -> np.ndarray:
        """Exact Shapley values of the uncalibrated log-odds, one column per input
        (:attr:`features`) and row of ``frame``: positive values push the score up."""
        x = self.matrix(frame)
        if self.family == "hist_gradient_boosting":
            import shap

            per_column = np.asarray(shap.TreeExplainer(self.estimator).shap_values(x))
        else:
            columns, linear = self.estimator[0], self.estimator[-1]
            z = columns.transform(x)
            per_column = linear.coef_[0] * (z - self.info["transformed_mean"])
            x_inputs = self._linear_column_inputs(columns)
            return _sum_by(per_column, x_inputs, len(self.features))
        return _sum_by(per_column, self.column_inputs(), len(self.features))

    def _linear_column_inputs(self, columns: Any) -> np.ndarray:
        """Input of each column the linear pipeline's ColumnTransformer puts out: the numeric
        inputs, their missing indicators, then the categorical indicator columns."""
        imputer = columns.named_transformers_["numeric"][0]
        missing = imputer.indicator_.features_ if imputer.indicator_ is not None else []
        categorical = self.column_inputs()[len(self.numeric) :]
        return np.concatenate(
            [np.arange(len(self.numeric)), np.asarray(missing, dtype=np.int64), categorical]
        )

    def reasons(self, frame: pl.DataFrame, top: int = 3) -> list[list[dict[str, Any]]]:
        """Per row of ``frame``: up to ``top`` inputs that push its score up the most, largest
        first, each with the customer's value (as text) and its log-odds contribution."""
        values = self.contributions(frame)
        order = np.argsort(-values, axis=1, kind="stable")[:, :top]
        shown = frame.select(
            (pl.col(c).round(3) if frame.schema[c].is_float() else pl.col(c))
            .cast(pl.String)
            .fill_null("missing")
            for c in self.features
        ).to_numpy()
        out = []
        for row, picks in enumerate(order):
            out.append(
                [
                    {
                        "feature": self.features[j],
                        "value": shown[row, j],
                        "impact": round(float(values[row, j]), 4),
                    }
                    for j in picks
                    if values[row, j] > 0
                ]
            )
        return out

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


class ResponseModel(ScoreModel):
    kind: ClassVar[str] = "response"


class NextOrderModel(ScoreModel):
    kind: ClassVar[str] = "next_order"


MODEL_CLASSES: dict[str, type[ScoreModel]] = {
    model.kind: model for model in (ChurnModel, PurchaseModel, ResponseModel, NextOrderModel)
}


def _sum_by(per_column: np.ndarray, inputs: np.ndarray, n_inputs: int) -> np.ndarray:
    """Columns of ``per_column`` added up per input (``inputs[j]`` is column j's input)."""
    out = np.zeros((per_column.shape[0], n_inputs))
    np.add.at(out.T, inputs, per_column.T)
    return out


def vocabulary_of(frame: pl.DataFrame, categorical: list[str]) -> dict[str, list[str]]:
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
    # an input missing on every training row tells nothing (and gradient boosting cannot bin it)
    empty = [c for c in (*numeric, *categorical) if train[c].null_count() == train.height]
    numeric = [c for c in numeric if c not in empty]
    categorical = [c for c in categorical if c not in empty]
    model = MODEL_CLASSES[target.name](
        target=target,
        family=family,
        numeric=numeric,
        categorical=categorical,
        vocabulary=vocabulary_of(train, categorical),
        estimator=None,
        calibration="isotonic",
        calibrator=None,
    )
    increasing = numeric.index("order_within_days") if target.name == "next_order" else None
    model.estimator = _estimator(
        family, len(numeric), len(model.columns) - len(numeric), seed, increasing
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
    if family == "logistic_regression":
        model.info["transformed_mean"] = model.estimator[0].transform(x).mean(axis=0)
    raw_valid = model.raw_probability(model.matrix(valid))
    briers = {}
    for method, calibrator in _fit_calibrators(oof, y_train).items():
        model.calibration, model.calibrator = method, calibrator
        briers[method] = brier_score_loss(y_valid, model.calibrate(raw_valid))
    model.calibration = min(briers, key=briers.get)
    model.calibrator = _fit_calibrators(oof, y_train)[model.calibration]
    model.info["inputs_missing_in_training"] = empty
    model.info["validation_brier_by_calibration"] = {k: float(v) for k, v in briers.items()}
    return model
