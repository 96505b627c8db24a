"""Stable segment identities: match a refitted model's clusters to the previous segments.

Matching is on shared members (the same customers assigned by both models on the refit day),
so it works whatever the two models' feature spaces or algorithms: the Hungarian algorithm
(scipy's ``linear_sum_assignment``) pairs clusters with segments to maximise the total
Jaccard overlap; a pair below ``min_jaccard`` is no match.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score


@dataclass(frozen=True)
class SegmentMatch:
    """How a new model's clusters map onto stable segment ids.

    Attributes
    ----------
    segment_ids
        Cluster label -> stable segment id.
    carried
        Segment id -> Jaccard overlap with the previous segment of the same id (matched ones).
    new
        Segment ids created for clusters without a match.
    vanished
        Previous segment ids no cluster matched.
    """

    segment_ids: dict[int, int]
    carried: dict[int, float] = field(default_factory=dict)
    new: list[int] = field(default_factory=list)
    vanished: list[int] = field(default_factory=list)


def initial_ids(labels: np.ndarray, noise_label: int | None = None) -> SegmentMatch:
    """Ids for a first model: 1, 2, ... by decreasing cluster size (noise last)."""
    values, counts = np.unique(labels, return_counts=True)
    order = sorted(
        zip(values.tolist(), counts.tolist(), strict=True),
        key=lambda vc: (vc[0] == noise_label, -vc[1], vc[0]),
    )
    ids = {int(v): i + 1 for i, (v, _) in enumerate(order)}
    return SegmentMatch(segment_ids=ids, new=sorted(ids.values()))


def jaccard_matrix(previous: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, list, list]:
    """Jaccard overlap of every (previous segment, new cluster) pair over the same customers."""
    prev_values = np.unique(previous).tolist()
    new_values = np.unique(labels).tolist()
    pi = np.searchsorted(prev_values, previous)
    ni = np.searchsorted(new_values, labels)
    both = np.zeros((len(prev_values), len(new_values)))
    np.add.at(both, (pi, ni), 1)
    sizes_prev = both.sum(axis=1, keepdims=True)
    sizes_new = both.sum(axis=0, keepdims=True)
    union = sizes_prev + sizes_new - both
    return np.divide(both, union, out=np.zeros_like(both), where=union > 0), prev_values, new_values


def match_segments(
    previous: np.ndarray,
    labels: np.ndarray,
    next_id: int,
    min_jaccard: float = 0.3,
) -> SegmentMatch:
    """Give the new model's clusters the ids of the previous segments they continue.

    Parameters
    ----------
    previous
        Stable segment id of each customer under the previous model.
    labels
        Cluster label of the same customers under the new model.
    next_id
        First id free for new segments (ids are never reused).
    min_jaccard
        Overlap below which a paired cluster counts as a new segment.

    Returns
    -------
    SegmentMatch
    """
    if previous.shape != labels.shape:
        raise ValueError("previous and labels must cover the same customers")
    jac, prev_values, new_values = jaccard_matrix(previous, labels)
    rows, cols = linear_sum_assignment(-jac)
    ids: dict[int, int] = {}
    carried: dict[int, float] = {}
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
        if jac[r, c] >= min_jaccard:
            ids[int(new_values[c])] = int(prev_values[r])
            carried[int(prev_values[r])] = round(float(jac[r, c]), 4)
    new: list[int] = []
    for value in new_values:
        if int(value) not in ids:
            ids[int(value)] = next_id
            new.append(next_id)
            next_id += 1
    vanished = sorted(int(v) for v in prev_values if int(v) not in carried)
    return SegmentMatch(segment_ids=ids, carried=carried, new=new, vanished=vanished)


def stability(previous: pl.DataFrame, current: pl.DataFrame) -> dict[str, float | int]:
    """Agreement of two days' assignments (customer_id, segment_id) on shared customers:
    ARI and the share of customers keeping the same segment id."""
    joined = previous.join(current, on="customer_id", how="inner", suffix="_current")
    if joined.is_empty():
        return {"shared_customers": 0}
    a = joined["segment_id"].to_numpy()
    b = joined["segment_id_current"].to_numpy()
    return {
        "shared_customers": joined.height,
        "ari": round(float(adjusted_rand_score(a, b)), 4),
        "same_segment_id_share": round(float((a == b).mean()), 4),
    }
