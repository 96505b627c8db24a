"""Stable ids: a refitted model's clusters take the ids of the segments they continue."""

from __future__ import annotations

import numpy as np
import pytest

from seg_pipeline.segmentation.identity import initial_ids, jaccard_matrix, match_segments


def test_first_model_numbers_segments_by_size_with_noise_last() -> None:
    labels = np.array([2, 2, 2, 0, 0, 1, 1, 1, 1, 3])
    match = initial_ids(labels, noise_label=1)
    assert match.segment_ids == {2: 1, 0: 2, 3: 3, 1: 4}
    assert match.new == [1, 2, 3, 4]


def test_permuted_clusters_get_the_previous_ids_back() -> None:
    rng = np.random.default_rng(0)
    previous = rng.integers(1, 5, size=1000)  # segment ids 1..4
    relabel = {1: 3, 2: 0, 3: 2, 4: 1}  # the new model numbers the same groups differently
    labels = np.array([relabel[p] for p in previous])
    noisy = labels.copy()
    flip = rng.random(1000) < 0.05
    noisy[flip] = rng.integers(0, 4, size=flip.sum())
    match = match_segments(previous, noisy, next_id=5)
    assert match.segment_ids == {3: 1, 0: 2, 2: 3, 1: 4}
    assert match.new == [] and match.vanished == []
    assert all(v > 0.85 for v in match.carried.values())


def test_a_split_creates_a_new_id_and_a_merge_records_the_vanished_one() -> None:
    previous = np.array([1] * 100 + [2] * 100 + [3] * 50 + [4] * 50)
    # segment 1 splits in two halves; segments 3 and 4 merge into one cluster
    labels = np.array([0] * 50 + [5] * 50 + [1] * 100 + [2] * 100)
    match = match_segments(previous, labels, next_id=7, min_jaccard=0.3)
    assert match.segment_ids[1] == 2  # segment 2 continues unchanged
    assert match.segment_ids[0] == 1  # one half keeps id 1 (Jaccard 0.5)
    assert match.segment_ids[5] == 7  # the other half is new, with a never-used id
    merged = match.segment_ids[2]
    assert merged in (3, 4)  # the merged cluster continues one of the two (Jaccard 0.5)
    assert match.vanished == [7 - merged]  # the other is recorded as vanished
    assert match.new == [7]


def test_low_overlap_is_not_a_match() -> None:
    previous = np.array([1, 1, 1, 1, 2, 2, 2, 2])
    labels = np.array([0, 1, 0, 1, 0, 1, 0, 1])  # orthogonal to the old split
    match = match_segments(previous, labels, next_id=3, min_jaccard=0.5)
    assert match.new == [3, 4]
    assert match.vanished == [1, 2]


def test_jaccard_matrix_and_shape_errors() -> None:
    jac, prev_values, new_values = jaccard_matrix(np.array([1, 1, 2]), np.array([0, 1, 1]))
    assert prev_values == [1, 2] and new_values == [0, 1]
    assert jac.tolist() == [[0.5, 1 / 3], [0.0, 0.5]]
    with pytest.raises(ValueError, match="same customers"):
        match_segments(np.array([1, 2]), np.array([0]), next_id=3)
