"""How well segments recover planted structure, and how hard that structure is to find.

Reads the generator's truth file; nothing that produces segments imports this module.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict, train_test_split
from sklearn.tree import DecisionTreeClassifier

from seg_pipeline.segmentation.config import SegmentationConfig
from seg_pipeline.segmentation.preprocess import feature_matrix

TRUTH_FILE = "customers.parquet"


def read_truth(
    truth_dir: Path, columns: tuple[str, ...] = ("customer_id", "persona")
) -> pl.DataFrame | None:
    """``columns`` of the generator's truth file (default: customer_id and planted persona),
    if the truth folder holds one."""
    path = Path(truth_dir) / TRUTH_FILE
    if not path.exists():
        return None
    return pl.read_parquet(path, columns=list(columns))


def recovery_scores(
    segments: pl.DataFrame, truth: pl.DataFrame, noise_segment_id: int | None = None
) -> dict[str, float | int]:
    """ARI and NMI of ``segments`` (customer_id, segment_id) against the planted personas.

    With a noise segment, the scores are also given on the customers outside it, beside the
    noise share.
    """
    joined = segments.join(truth, on="customer_id", how="inner")
    if joined.is_empty():
        raise ValueError("no segmented customer appears in the truth file")
    labels = joined["segment_id"].to_numpy()
    # integer codes: scikit-learn's contingency table sorts Python strings (12 s at 1M rows)
    personas = joined["persona"].cast(pl.String).rank("dense").to_numpy()
    out: dict[str, float | int] = {
        "customers": joined.height,
        "ari": round(float(adjusted_rand_score(personas, labels)), 4),
        "nmi": round(float(normalized_mutual_info_score(personas, labels)), 4),
    }
    if noise_segment_id is not None:
        keep = labels != noise_segment_id
        out["noise_share"] = round(float(1 - keep.mean()), 4)
        if keep.sum() > 1:
            out["ari_without_noise"] = round(
                float(adjusted_rand_score(personas[keep], labels[keep])), 4
            )
            out["nmi_without_noise"] = round(
                float(normalized_mutual_info_score(personas[keep], labels[keep])), 4
            )
    return out


def difficulty_report(
    features: pl.DataFrame,
    truth: pl.DataFrame,
    config: SegmentationConfig,
    max_rows: int = 20_000,
    folds: int = 5,
) -> dict[str, object]:
    """How hard the planted personas are to find from the segmentation features.

    (a) For each feature alone, the ARI of the best split of that feature into personas: a
    depth-3 decision tree on that one feature fitted to the truth, cross-validated. (b) The
    supervised ceiling: accuracy of gradient boosting on all the features, fitted on three
    quarters of the customers and scored on the rest (stratified; five folds cost 11 s on 20,000
    customers for a figure one holdout gives within about a point). Customers are sampled
    (seeded) to at most ``max_rows``.
    """
    joined = features.join(truth, on="customer_id", how="inner")
    if joined.height > max_rows:
        joined = joined.sample(max_rows, seed=config.seed)
    x = feature_matrix(joined, config)
    y = joined["persona"].to_numpy()
    cv = StratifiedKFold(folds, shuffle=True, random_state=config.seed)
    single: dict[str, float] = {}
    for i, name in enumerate(config.features):
        column = x[:, [i]]
        column = np.where(np.isnan(column), np.nanmedian(column), column)
        tree = DecisionTreeClassifier(max_depth=3, random_state=config.seed)
        predicted = cross_val_predict(tree, column, y, cv=cv)
        single[name] = round(float(adjusted_rand_score(y, predicted)), 4)
    train, test = train_test_split(
        np.arange(len(y)), test_size=0.25, stratify=y, random_state=config.seed
    )
    booster = HistGradientBoostingClassifier(random_state=config.seed).fit(x[train], y[train])
    accuracy = float(booster.score(x[test], y[test]))
    return {
        "customers": joined.height,
        "single_feature_ari": single,
        "max_single_feature_ari": max(single.values()),
        "supervised_holdout_accuracy": round(accuracy, 4),
    }
