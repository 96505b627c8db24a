"""The PSI functions on known distributions, without Dagster or a warehouse."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from seg_pipeline.monitoring.drift import (
    DriftConfig,
    drift_rows,
    drift_tag,
    feature_psi,
    psi,
    psi_of_counts,
    quantile_edges,
    share_psi,
)
from seg_pipeline.monitoring.plots import _psi_bar_figure
from seg_pipeline.ops.drift import DRIFT_FEATURES_TAG, drift_run_requests

THRESHOLD = DriftConfig().psi_threshold


def test_identical_distributions_have_no_drift() -> None:
    x = np.random.default_rng(1).lognormal(3, 1, 5_000)
    assert psi(x, x) == pytest.approx(0.0, abs=1e-12)
    # another sample of the same distribution: sampling noise only
    y = np.random.default_rng(2).lognormal(3, 1, 5_000)
    assert psi(x, y) < 0.02


def test_a_shifted_distribution_is_above_the_threshold() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(0, 1, 5_000)
    assert 0.003 < psi(x, rng.normal(0.1, 1, 5_000)) < 0.05  # a tenth of a standard deviation
    assert psi(x, rng.normal(0.5, 1, 5_000)) > THRESHOLD  # half a standard deviation
    assert psi(x, rng.normal(0, 2, 5_000)) > THRESHOLD  # twice as spread


def test_the_textbook_formula_on_counts() -> None:
    expected, actual = np.array([50, 30, 20]), np.array([30, 30, 40])
    e, a = expected / 100, actual / 100
    assert psi_of_counts(expected, actual) == pytest.approx(float(np.sum((a - e) * np.log(a / e))))
    # an empty bin counts as rare (epsilon), not infinite
    assert np.isfinite(psi_of_counts(np.array([100, 0]), np.array([50, 50])))


def test_zero_heavy_counts_and_nulls() -> None:
    rng = np.random.default_rng(4)
    counts = np.where(rng.random(4_000) < 0.7, 0, rng.poisson(3, 4_000)).astype(float)
    edges = quantile_edges(counts, 10)
    assert np.all(np.diff(edges) > 0)  # coinciding deciles (the zeros) merged
    assert psi(counts, counts) == pytest.approx(0.0, abs=1e-12)
    more_zeros = np.where(rng.random(4_000) < 0.9, 0, rng.poisson(3, 4_000)).astype(float)
    assert psi(counts, more_zeros) > THRESHOLD
    # nulls are a bin of their own: customers losing a value is drift too
    with_nulls = counts.copy()
    with_nulls[:2_000] = np.nan
    assert psi(counts, with_nulls) > THRESHOLD


def test_segment_shares() -> None:
    before = {1: 400, 2: 300, 3: 300}
    assert share_psi(before, {1: 40, 2: 30, 3: 30}) == pytest.approx(0.0, abs=1e-12)
    assert share_psi(before, {1: 410, 2: 290, 3: 300}) < 0.01
    assert share_psi(before, {1: 200, 2: 300, 3: 300, 4: 200}) > THRESHOLD  # a new segment


def test_rows_tags_and_run_requests() -> None:
    rng = np.random.default_rng(5)
    reference = pl.DataFrame({"a": rng.normal(0, 1, 2_000), "b": rng.normal(0, 1, 2_000)})
    current = pl.DataFrame({"a": rng.normal(0, 1, 2_000), "b": rng.normal(1, 1, 2_000)})
    measured = feature_psi(reference, current, ["a", "b"])
    day = date(2026, 2, 4)
    rows = drift_rows(day, "segmentation", "v1", date(2026, 1, 29), measured, THRESHOLD)
    assert rows["drifted"].to_list() == [False, True]
    assert drift_tag(rows) == f"b={rows['psi'][1]:.2f}"
    (request,) = drift_run_requests(rows)
    assert request.partition_key == "2026-02-04"
    assert request.tags[DRIFT_FEATURES_TAG] == drift_tag(rows)
    assert drift_run_requests(rows, [request.run_key]) == []
    assert drift_run_requests(rows.filter(pl.col("feature") == "a")) == []
    # the plot names features and numbers only
    figure = _psi_bar_figure(rows, THRESHOLD, "v1")
    labels = [t.get_text() for t in figure.axes[0].get_yticklabels()]
    assert sorted(labels) == ["a", "b"]
