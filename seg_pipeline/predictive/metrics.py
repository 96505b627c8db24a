"""How good a score is on labels it never saw: ranking, calibration and targeting figures.

Plain functions of NumPy arrays (label 1 = the event, score = higher means more likely), shared
by the models, the baselines and the truth evaluation, so every row of a comparison is
measured the same way.
"""

from __future__ import annotations

import numpy as np

CALIBRATION_BINS = 10
TOP_SHARE = 0.10


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = CALIBRATION_BINS) -> float:
    """Mean |observed rate - mean probability| over equal-width probability bins, weighted by
    the bins' shares of rows."""
    y = np.asarray(y, dtype=float)
    p = np.clip(np.asarray(p, dtype=float), 0.0, 1.0)
    which = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            total += inside.mean() * abs(y[inside].mean() - p[inside].mean())
    return float(total)


def top_share(y: np.ndarray, score: np.ndarray, share: float = TOP_SHARE) -> tuple[float, float]:
    """(lift, capture) of the ``share`` of rows with the highest scores: their event rate over
    the base rate, and the share of all events they hold. Ties at the cut are broken by row
    order after a stable sort, so the figure does not depend on the platform."""
    y = np.asarray(y, dtype=float)
    n_top = max(1, round(len(y) * share))
    top = np.argsort(-np.asarray(score, dtype=float), kind="stable")[:n_top]
    base = y.mean()
    if base == 0:
        return float("nan"), float("nan")
    return float(y[top].mean() / base), float(y[top].sum() / y.sum())


def score_metrics(y: np.ndarray, score: np.ndarray, *, is_probability: bool) -> dict[str, float]:
    """ROC AUC, PR AUC, lift and capture at the top 10%; Brier score and expected calibration
    error too when ``score`` is a probability (a baseline's rank score has none)."""
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    y = np.asarray(y, dtype=int)
    score = np.asarray(score, dtype=float)
    lift, capture = top_share(y, score)
    out = {
        "rows": len(y),
        "positive_rate": float(y.mean()),
        "roc_auc": float(roc_auc_score(y, score)),
        "pr_auc": float(average_precision_score(y, score)),
        "lift_top10": lift,
        "capture_top10": capture,
    }
    if is_probability:
        out["brier"] = float(brier_score_loss(y, score))
        out["neg_brier"] = -out["brier"]
        out["ece"] = expected_calibration_error(y, score)
    return out


def grouped_metrics(
    y: np.ndarray, score: np.ndarray, groups: np.ndarray, *, is_probability: bool
) -> dict[str, float]:
    """:func:`score_metrics` within each group of ``groups`` that holds both labels, averaged
    over those groups (``rows``: all of them; ``by_group`` figures are not kept)."""
    y = np.asarray(y)
    score = np.asarray(score, dtype=float)
    each = []
    for group in sorted(set(groups.tolist())):
        inside = groups == group
        if 0 < y[inside].sum() < inside.sum():
            each.append(score_metrics(y[inside], score[inside], is_probability=is_probability))
    if not each:
        raise ValueError("no group holds both labels")
    out = {key: float(np.mean([m[key] for m in each])) for key in each[0]}
    out["rows"] = len(y)
    out["positive_rate"] = float(y.mean())
    return out


def concordance_index(actual: np.ndarray, predicted: np.ndarray, horizon: float) -> float:
    """Harrell's C of predicted days to an event against the actual days, where NaN in
    ``actual`` means no event within ``horizon`` (censored there) and NaN in ``predicted``
    means none expected within it: the share of comparable pairs (the earlier actual is an
    event) whose predictions are in the same order, ties counting one half. O(n^2): pass a
    sample of a few thousand rows."""
    t = np.where(np.isnan(actual), horizon + 1.0, actual)
    event = ~np.isnan(actual)
    p = np.where(np.isnan(predicted), horizon + 1.0, predicted)
    comparable = event[:, None] & (t[:, None] < t[None, :])
    agree = (p[:, None] < p[None, :]) + 0.5 * (p[:, None] == p[None, :])
    pairs = comparable.sum()
    return float((agree * comparable).sum() / pairs) if pairs else float("nan")


def date_figures(actual: np.ndarray, predicted: np.ndarray, horizon: float) -> dict[str, float]:
    """How well expected days to the next order match the actual ones (NaN: none within
    ``horizon``, actual or expected): concordance, mean absolute error in days where both
    exist, and the shares of customers with an order given a date (recall) and with a date
    who ordered (precision)."""
    has_actual, has_predicted = ~np.isnan(actual), ~np.isnan(predicted)
    both = has_actual & has_predicted
    return {
        "rows": len(actual),
        "concordance": concordance_index(actual, predicted, horizon),
        "mae_days": float(np.abs(actual[both] - predicted[both]).mean()) if both.any() else None,
        "date_recall": float(both.sum() / has_actual.sum()) if has_actual.any() else None,
        "date_precision": float(both.sum() / has_predicted.sum()) if has_predicted.any() else None,
    }
