"""Recommendations on ten generated weeks (1,500 customers, ``segmented_history``): better
than both popularity baselines on a time holdout, never a product bought recently, top_n ranked
rows per customer, deterministic, segment popularity for a customer without orders."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

from seg_pipeline.activation.recommendations import (
    RECOMMENDATIONS_TABLE,
    RecommendationConfig,
    _top,
    evaluate_recommendations,
    purchase_matrix,
    rank,
    ranking_metrics,
    recommendations_rows,
    summarize_recommendations,
)
from seg_pipeline.definitions import build_definitions
from seg_pipeline.resources import query_frame, transaction
from seg_pipeline.settings import Settings
from seg_pipeline.tables import write_day
from tests.conftest import built_once, run_range
from tests.predictive.conftest import HISTORY_END, history  # noqa: F401 (fixture)

HOLDOUT_DAYS = 14
# The day the recommendations are made and the time holdout's cut-off: eight weeks of history
# before it, the last two weeks of the history after it.
DAY = HISTORY_END - timedelta(days=HOLDOUT_DAYS)
SETTINGS = RecommendationConfig()


@pytest.fixture(scope="session")
def segmented_history(history: Settings, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    """The ten weeks of tests/predictive (1,500 customers, seed 5) with customer_segments of
    ``DAY`` (its segmentation model fitted that day); built once per session and never written
    after: copy it before writing."""

    def build(root: Path) -> None:
        copy = replace(history, warehouse_path=root / "warehouse.duckdb", model_dir=root / "models")
        shutil.copy(history.warehouse_path, copy.warehouse_path)
        segments = ["segmentation_model", "customer_segments"]
        assert run_range(build_definitions(copy), DAY, DAY, assets=segments).success

    return built_once(tmp_path_factory, "segmented_history", build) / "warehouse.duckdb"


@pytest.fixture(scope="module")
def conn(segmented_history: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the segmented history (never written after it is built)."""
    conn = duckdb.connect(str(segmented_history), read_only=True)
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture(scope="module")
def rows(conn: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return recommendations_rows(conn, DAY, SETTINGS)


def _writable(segmented_history: Path, tmp_path: Path) -> duckdb.DuckDBPyConnection:
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(segmented_history, copy)
    return duckdb.connect(str(copy))


def _segments(conn: duckdb.DuckDBPyConnection, day: date) -> pl.DataFrame:
    return query_frame(
        conn,
        "select customer_id, segment_id from customer_segments where as_of_date = $d",
        {"d": day},
    )


def _bought(conn: duckdb.DuckDBPyConnection, start: date, end: date) -> pl.DataFrame:
    """(customer_id, product_id) of the lines not cancelled ordered in [start, end]."""
    return query_frame(
        conn,
        "select distinct customer_id, product_id from stg_orders "
        "where order_date between $s and $e and arrival_date <= $e "
        "and order_status <> 'cancelled'",
        {"s": start, "e": end},
    )


def test_beats_both_popularity_baselines_on_a_time_holdout(
    conn: duckdb.DuckDBPyConnection,
) -> None:
    figures = evaluate_recommendations(conn, DAY, HOLDOUT_DAYS, SETTINGS)
    assert figures["customers_evaluated"] >= 500
    for metric in ("hit_rate_at_10", "recall_at_10", "ndcg_at_10"):
        model = figures["model"][metric]
        assert model > figures["global_popularity"][metric], (metric, figures)
        assert model > figures["segment_popularity"][metric], (metric, figures)


def test_metrics_of_known_lists() -> None:
    import numpy as np

    top = np.array([[1, 2, 3], [4, 5, 6]])
    figures = ranking_metrics(top, [{3, 9}, {7}], k=3)
    assert figures["hit_rate_at_3"] == 0.5
    assert figures["recall_at_3"] == 0.25
    # one hit at rank 3 of two relevant: (1/log2(4)) / (1 + 1/log2(3)), and 0
    assert figures["ndcg_at_3"] == round((0.5 / (1 + 1 / np.log2(3))) / 2, 4)


def test_every_customer_gets_top_n_ranked_rows(
    conn: duckdb.DuckDBPyConnection, rows: pl.DataFrame
) -> None:
    segments = _segments(conn, DAY)
    assert rows["customer_id"].n_unique() == segments.height
    per_customer = rows.group_by("customer_id").agg(
        pl.len().alias("n"), pl.col("rank").sort().alias("ranks"), pl.col("product_id").n_unique()
    )
    assert per_customer["n"].to_list() == [SETTINGS.top_n] * segments.height
    assert per_customer["product_id"].to_list() == [SETTINGS.top_n] * segments.height
    assert all(r == list(range(1, SETTINGS.top_n + 1)) for r in per_customer["ranks"].to_list())
    assert set(rows["source"].unique()) == {"model", "segment_popularity"}
    same_segment = rows.join(segments, on="customer_id", suffix="_of_day")
    assert (same_segment["segment_id"] == same_segment["segment_id_of_day"]).all()
    # the score is the ranking key: it never rises down a customer's list
    rises = rows.sort("customer_id", "rank").with_columns(
        pl.col("score").diff().over("customer_id").alias("step")
    )
    assert rises.filter(pl.col("step") > 0).height == 0


def test_nothing_bought_in_the_recent_days_is_recommended(
    conn: duckdb.DuckDBPyConnection, rows: pl.DataFrame
) -> None:
    recent = _bought(conn, DAY - timedelta(days=SETTINGS.recent_days - 1), DAY)
    assert recent.height > 500  # the check has something to find
    assert rows.join(recent, on=["customer_id", "product_id"]).height == 0
    # without the exclusion, some of those products would have been recommended
    unfiltered = recommendations_rows(conn, DAY, SETTINGS.model_copy(update={"recent_days": 0}))
    assert unfiltered.join(recent, on=["customer_id", "product_id"]).height > 0


def test_same_input_and_settings_give_the_same_rows(
    conn: duckdb.DuckDBPyConnection, rows: pl.DataFrame
) -> None:
    again = recommendations_rows(conn, DAY, SETTINGS)
    assert again.equals(rows)


def test_write_day_replaces_the_partition(
    segmented_history: Path, tmp_path: Path, rows: pl.DataFrame
) -> None:
    writable = _writable(segmented_history, tmp_path)
    try:
        for _ in range(2):
            with transaction(writable):
                write_day(writable, RECOMMENDATIONS_TABLE, DAY, SETTINGS)
        stored = query_frame(writable, "select * from recommendations order by customer_id, rank")
    finally:
        writable.close()
    assert stored.equals(rows.sort("customer_id", "rank"))


def test_a_customer_without_orders_gets_segment_popularity(
    segmented_history: Path, tmp_path: Path
) -> None:
    conn = _writable(segmented_history, tmp_path)
    try:
        segments = _segments(conn, DAY)
        start = DAY - timedelta(days=SETTINGS.history_days - 1)
        history = _bought(conn, start, DAY)
        # the most common segment; two of its buyers lose their orders
        segment = segments.group_by("segment_id").len().sort("len", "segment_id")[-1, 0]
        members = segments.filter(pl.col("segment_id") == segment)["customer_id"]
        chosen = sorted(set(members) & set(history["customer_id"]))[:2]
        conn.execute("delete from stg_orders where list_contains(?, customer_id)", [chosen])
        got = recommendations_rows(conn, DAY, SETTINGS)
        left = _bought(conn, start, DAY)
    finally:
        conn.close()
    theirs = got.filter(pl.col("customer_id").is_in(chosen)).sort("customer_id", "rank")
    assert theirs.height == 2 * SETTINGS.top_n
    assert set(theirs["source"]) == {"segment_popularity"}
    lists = theirs.group_by("customer_id").agg(pl.col("product_id"))["product_id"].to_list()
    assert lists[0] == lists[1]
    # the list is the segment's most bought products (distinct buyers among its members)
    buyers = (
        left.filter(pl.col("customer_id").is_in(members.to_list())).group_by("product_id").len()
    )
    counts = dict(zip(buyers["product_id"], buyers["len"], strict=True))
    listed = [counts.get(p, 0) for p in lists[0]]
    assert listed == sorted(listed, reverse=True)
    assert min(listed) >= max(c for p, c in counts.items() if p not in lists[0])


def test_history_must_cover_the_exclusion_window() -> None:
    with pytest.raises(ValueError, match="history_days"):
        RecommendationConfig(history_days=7, recent_days=30)


def test_the_run_metadata_names_no_customer(rows: pl.DataFrame) -> None:
    meta = summarize_recommendations(None, DAY, DAY, rows, SETTINGS)  # type: ignore[arg-type]
    assert meta["customers"] == rows["customer_id"].n_unique()
    assert 0 < meta["model_share"] < 1
    text = str(meta)
    assert not any(c in text for c in rows["customer_id"].unique().to_list())


def test_a_small_catalogue_gives_fewer_rows_never_a_recent_one() -> None:
    day = date(2026, 3, 1)
    frame = pl.DataFrame(
        {
            "customer_id": ["a", "a", "b", "c"],
            "product_id": ["P1", "P2", "P2", "P3"],
            "orders": [1, 2, 1, 1],
            "units": [1, 2, 1, 1],
            "last_order_date": [day, day - timedelta(days=90), day, day - timedelta(days=1)],
        }
    )
    purchases = purchase_matrix(frame, day - timedelta(days=29))
    targets = pl.DataFrame({"customer_id": ["a", "b", "new"], "segment_id": [1, 1, 1]})
    ranked = rank(purchases, targets, SETTINGS, "model", 10)
    lists = [[purchases.products[p] for p in row if p >= 0] for row in ranked.products]
    # three products seen; each customer loses what they bought in the last 30 days
    assert lists[0] == ["P2", "P3"]  # P2 bought 90 days ago may come back, P1 may not
    assert sorted(lists[1]) == ["P1", "P3"]
    assert len(lists[2]) == 3 and not ranked.from_model[2].any()


@pytest.mark.parametrize("distinct_keys", [3, 1_000_000])
def test_top_is_the_full_stable_sort_cut(distinct_keys: int) -> None:
    # Few distinct keys tie at the cut in most rows (the whole-row fallback); many distinct
    # keys in none (the partition path). -inf marks excluded products, as for recent purchases.
    rng = np.random.default_rng(7)
    key = rng.integers(0, distinct_keys, size=(500, 60)).astype(np.float64)
    key[rng.random(key.shape) < 0.2] = -np.inf
    key[:5, 4:] = -np.inf  # fewer finite keys than the cut
    for width in (1, 10, 60):
        expected = np.argsort(-key, axis=1, kind="stable")[:, :width]
        assert np.array_equal(_top(key, width), expected)
