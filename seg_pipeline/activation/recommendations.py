"""Product recommendations: the top-N next products for every customer each day.

A row of ``recommendations`` is one recommended product for one customer on one day: its rank
(1 = best), score and where it came from (``model``, or ``segment_popularity`` when the model
has too little to say about the customer). Every customer of ``customer_segments`` that day
gets ``top_n`` rows (fewer only when the catalogue seen in the history window, less what the
customer bought recently, is smaller). A product the customer bought in the ``recent_days``
up to the day is never recommended.

The method (``RecommendationConfig.method``) is trained each day on the purchases of the last
``history_days`` (``sql/activation/purchases.sql``):

- ``item_cosine``: item-to-item co-purchase. The cosine similarity of two products' buyer
  vectors in the customer x product matrix of order counts (over all customers, or only the
  customer's segment: ``similarity_scope``), shrunk towards 0 for rarely bought products; a
  customer's model score of a product is the sum of its similarities to the products the
  customer bought in the window. The ranking adds ``popularity_weight`` times the product's
  popularity in the customer's segment (both scaled to [0, 1]); customers without purchases in
  the window, and the places the model leaves empty, get segment popularity.

Implicit's ALS and BPR were measured against it and lost (``docs/activation.md``), so the
project does not depend on that library.

:func:`evaluate_recommendations` measures a method on a time holdout beside the two baselines
(global and segment popularity). The choice of the default method and its figures are in
``docs/activation.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import duckdb
import numpy as np
import polars as pl
from dagster import Config, MetadataValue
from pydantic import Field, field_validator, model_validator

from seg_pipeline.metadata import markdown_table
from seg_pipeline.resources import query_frame, read_sql
from seg_pipeline.tables import DailyTable

METHODS: tuple[str, ...] = ("item_cosine",)
SCOPES: tuple[str, ...] = ("segment", "all")
RANKERS: tuple[str, ...] = ("model", "global_popularity", "segment_popularity")
EVALUATION_K = 10
# Customers scored at once: bounds the dense (customers x products) score block in memory.
BATCH_CUSTOMERS = 4096

SCHEMA: dict[str, Any] = {
    "as_of_date": pl.Date,
    "customer_id": pl.String,
    "rank": pl.Int32,
    "product_id": pl.String,
    "score": pl.Float64,
    "source": pl.String,
    "segment_id": pl.Int64,
}

COLUMNS: dict[str, str] = {
    "as_of_date": "Day of the recommendations (partition).",
    "customer_id": "Customer (pseudonymous id).",
    "rank": "1 = the product most recommended to the customer that day, up to top_n.",
    "product_id": "Recommended product; never one the customer bought in the recent_days "
    "up to the day.",
    "score": "The ranking key, decreasing with rank: the co-purchase score scaled to (0, 1] "
    "for the customer plus popularity_weight times the product's popularity in the segment "
    "scaled to [0, 1) (popularity alone for a product or customer without co-purchase signal).",
    "source": "model, or segment_popularity where the model had nothing (more) to say.",
    "segment_id": "The customer's segment that day (customer_segments).",
}


class RecommendationConfig(Config):
    """How many products are recommended, what is excluded, and how they are ranked."""

    top_n: int = Field(default=10, ge=1, description="products recommended per customer")
    recent_days: int = Field(
        default=30,
        ge=0,
        description="a product bought in this many days up to the day (the day included) "
        "is not recommended",
    )
    history_days: int = Field(
        default=180,
        ge=1,
        description="purchases of this many days up to the day train the model and the "
        "popularity fallback",
    )
    method: str = Field(
        default="item_cosine",
        description=f"one of {METHODS}; chosen by measurement (docs/activation.md)",
    )
    similarity_scope: str = Field(
        default="all",
        description="item_cosine: similarities from the customer's own segment ('segment') "
        "or from all customers ('all')",
    )
    shrinkage: float = Field(
        default=5.0,
        ge=0,
        description="item_cosine: added to the denominator of the cosine, so products "
        "bought by few customers get smaller similarities",
    )
    repeat_purchases: bool = Field(
        default=True,
        description="item_cosine: a product bought before the recent_days counts as similar "
        "to itself (it can be recommended again)",
    )
    popularity_weight: float = Field(
        default=0.5,
        ge=0,
        description="0: the model's products first, segment popularity only fills the list; "
        "w > 0: products ranked by the model score scaled to [0, 1] per customer plus w "
        "times the segment popularity scaled to [0, 1)",
    )
    seed: int = Field(
        default=20261126,
        description="seed of any random step; item_cosine and the popularity rankers have "
        "none (ties go to the smaller product id), so their output depends on the data alone",
    )

    @field_validator("method")
    @classmethod
    def _known_method(cls, value: str) -> str:
        if value not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {value!r}")
        return value

    @field_validator("similarity_scope")
    @classmethod
    def _known_scope(cls, value: str) -> str:
        if value not in SCOPES:
            raise ValueError(f"similarity_scope must be one of {SCOPES}, got {value!r}")
        return value

    @model_validator(mode="after")
    def _history_covers_recent(self) -> RecommendationConfig:
        if self.history_days < self.recent_days:
            raise ValueError("history_days must be at least recent_days")
        return self


# -- data ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Purchases:
    """The customer x product matrix of a history window.

    ``customers`` and ``products`` are sorted ids (rows and columns); ``orders`` holds the
    number of orders of each (customer, product) bought in the window, ``recent`` is 1 where
    the last of them is within the exclusion window.
    """

    customers: np.ndarray
    products: np.ndarray
    orders: Any  # scipy.sparse.csr_matrix, float32
    recent: Any  # scipy.sparse.csr_matrix, bool


def purchases_frame(conn: duckdb.DuckDBPyConnection, start: date, end: date) -> pl.DataFrame:
    """One row per (customer_id, product_id) bought with order_date in [start, end], as the
    warehouse knew it on ``end``: orders, units, last_order_date."""
    return query_frame(
        conn, read_sql("activation/purchases"), {"start_date": start, "end_date": end}
    )


def purchase_matrix(frame: pl.DataFrame, recent_from: date) -> Purchases:
    """The matrix of a :func:`purchases_frame`; ``recent`` marks purchases on or after
    ``recent_from``."""
    from scipy import sparse

    customers = np.array(sorted(frame["customer_id"].unique().to_list()), dtype=object)
    products = np.array(sorted(frame["product_id"].unique().to_list()), dtype=object)
    rows = np.searchsorted(customers, frame["customer_id"].to_numpy())
    cols = np.searchsorted(products, frame["product_id"].to_numpy())
    shape = (customers.size, products.size)
    orders = sparse.csr_matrix(
        (frame["orders"].to_numpy().astype(np.float32), (rows, cols)), shape=shape
    )
    is_recent = (frame["last_order_date"] >= recent_from).to_numpy()
    recent = sparse.csr_matrix(
        (np.ones(int(is_recent.sum()), dtype=bool), (rows[is_recent], cols[is_recent])),
        shape=shape,
    )
    return Purchases(customers, products, orders, recent)


def _window(day: date, settings: RecommendationConfig) -> tuple[date, date]:
    """First day of the history window and of the exclusion window ending on ``day``."""
    return (
        day - timedelta(days=settings.history_days - 1),
        day - timedelta(days=settings.recent_days - 1),
    )


def _segments(conn: duckdb.DuckDBPyConnection, day: date) -> pl.DataFrame:
    from seg_pipeline.segmentation.daily import segments_of_day

    return segments_of_day(conn, day)


# -- models -------------------------------------------------------------------------------


def _cosine(x: Any, shrinkage: float, keep_diagonal: bool) -> Any:
    """Item x item cosine similarity of the columns of ``x`` (sparse), shrunk by
    ``shrinkage`` in the denominator."""
    from scipy import sparse

    x = sparse.csr_matrix(x, dtype=np.float64)
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel())
    co = (x.T @ x).tocoo()
    values = co.data / (norms[co.row] * norms[co.col] + shrinkage)
    if not keep_diagonal:
        values[co.row == co.col] = 0.0
    similar = sparse.csr_matrix((values, (co.row, co.col)), shape=co.shape)
    similar.eliminate_zeros()
    return similar


class _Scorer:
    """Scores of the model for customers (rows of the purchase matrix)."""

    def __init__(
        self, purchases: Purchases, segment_of_row: np.ndarray, settings: RecommendationConfig
    ) -> None:
        self.p = purchases
        self.settings = settings
        self.segment_of_row = segment_of_row
        self._similar: dict[Any, Any] = {}

    def _similarity(self, segment: Any) -> Any:
        key = segment if self.settings.similarity_scope == "segment" else None
        if key not in self._similar:
            rows = (
                np.flatnonzero(self.segment_of_row == segment)
                if key is not None
                else np.arange(self.p.customers.size)
            )
            self._similar[key] = _cosine(
                self.p.orders[rows], self.settings.shrinkage, self.settings.repeat_purchases
            )
        return self._similar[key]

    def scores(self, rows: np.ndarray, segment: Any) -> tuple[np.ndarray, np.ndarray]:
        """Dense scores (len(rows) x products) of purchase-matrix ``rows`` of one segment, and
        where they say something (a positive score: the product was co-bought with one of the
        customer's)."""
        block = (self.p.orders[rows] @ self._similarity(segment)).toarray()
        return block, block > 0


# -- ranking ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ranked:
    """Top lists: row ``i`` of ``products`` (column indexes, -1 where none) ranks the products
    of target ``i``; per cell the ranking key (``scores``, decreasing along a row) and whether
    the model scored the product (``from_model``)."""

    products: np.ndarray
    scores: np.ndarray
    from_model: np.ndarray


def _popularity(purchases: Purchases, rows: np.ndarray) -> np.ndarray:
    """Customers among ``rows`` who bought each product."""
    bought = purchases.orders[rows] > 0
    return np.asarray(bought.sum(axis=0), dtype=np.float64).ravel()


def rank(
    purchases: Purchases,
    targets: pl.DataFrame,
    settings: RecommendationConfig,
    ranker: str,
    n: int,
) -> Ranked:
    """The top ``n`` products of each target customer (``targets``: customer_id, segment_id)
    by ``ranker`` (one of :data:`RANKERS`), products bought recently excluded.

    ``model`` ranks by the model score scaled to (0, 1] per customer plus
    ``popularity_weight`` times the segment popularity scaled to [0, 1) (with weight 0: the
    products the model scores first, then segment popularity); the popularity rankers rank by
    distinct buyers in the window (all customers, or those of the target's segment with all
    customers breaking ties).
    """
    if ranker not in RANKERS:
        raise ValueError(f"ranker must be one of {RANKERS}, got {ranker!r}")
    ids = targets["customer_id"].to_list()
    segments = targets["segment_id"].to_numpy().astype(object)
    row_of = {customer: row for row, customer in enumerate(purchases.customers.tolist())}
    row_of_target = np.array([row_of.get(customer, -1) for customer in ids], dtype=np.int64)
    has_history = row_of_target >= 0
    # the segment of each purchase-matrix row (customers not among the targets: None)
    segment_of_row = np.full(purchases.customers.size, None, dtype=object)
    segment_of_row[row_of_target[has_history]] = segments[has_history]

    n_products = purchases.products.size
    width = min(n, n_products)
    out_products = np.full((len(ids), width), -1, dtype=np.int64)
    out_scores = np.zeros((len(ids), width))
    out_model = np.zeros((len(ids), width), dtype=bool)
    if width == 0:
        return Ranked(out_products, out_scores, out_model)

    everyone = _popularity(purchases, np.arange(purchases.customers.size))
    tie = everyone / (everyone.max() + 1.0) if everyone.size else everyone
    scorer = _Scorer(purchases, segment_of_row, settings) if ranker == "model" else None
    for segment in _sorted_distinct(segments):
        members = np.flatnonzero(segments == segment)
        in_segment = np.flatnonzero(segment_of_row == segment)
        if ranker == "global_popularity":
            fill_key = everyone + tie
        else:
            fill_key = _popularity(purchases, in_segment) + tie
        # popularity keys in [0, 1)
        fill_key = fill_key / (fill_key.max() + 1.0)
        # Members who bought nothing in the window all get the segment's popularity list.
        newcomers = members[row_of_target[members] < 0]
        if newcomers.size:
            order = _top(fill_key[np.newaxis, :], width)[0]
            out_products[newcomers] = order
            out_scores[newcomers] = fill_key[order]
        buyers = members[row_of_target[members] >= 0]
        for start in range(0, buyers.size, BATCH_CUSTOMERS):
            batch = buyers[start : start + BATCH_CUSTOMERS]
            rows = row_of_target[batch]
            key = np.broadcast_to(fill_key, (batch.size, n_products))
            model = np.zeros((batch.size, n_products), dtype=bool)
            if scorer is not None:
                block, model = scorer.scores(rows, segment)
                # model scores are positive where they say something: scaled to (0, 1]
                high = block.max(axis=1, keepdims=True)
                scaled = block / np.where(high > 0, high, 1.0)
                blend = settings.popularity_weight
                key = scaled + blend * key if blend > 0 else np.where(model, 2.0 + scaled, key)
            key = np.where(purchases.recent[rows].toarray(), -np.inf, key)
            order = _top(key, width)
            chosen_key = np.take_along_axis(key, order, axis=1)
            valid = np.isfinite(chosen_key)
            out_products[batch] = np.where(valid, order, -1)
            out_scores[batch] = np.where(valid, chosen_key, 0.0)
            out_model[batch] = valid & np.take_along_axis(model, order, axis=1)
    return Ranked(out_products, out_scores, out_model)


def _top(key: np.ndarray, width: int) -> np.ndarray:
    """Column indexes of the ``width`` largest keys of each row of ``key``, by key descending
    and, among equal keys, by index ascending: ``np.argsort(-key, kind="stable")[:, :width]``
    without sorting whole rows (rows whose ``width``-th key is tied beyond the cut are sorted
    whole, so the tie goes to the smaller index as in the full sort)."""
    if width >= key.shape[1]:
        return np.argsort(-key, axis=1, kind="stable")[:, :width]
    chosen = np.sort(np.argpartition(-key, width - 1, axis=1)[:, :width], axis=1)
    chosen_key = np.take_along_axis(key, chosen, axis=1)
    order = np.take_along_axis(chosen, np.argsort(-chosen_key, axis=1, kind="stable"), axis=1)
    # ties at the cut: more keys equal to the row's width-th key than were chosen
    cut = chosen_key.min(axis=1, keepdims=True)
    tied = (key >= cut).sum(axis=1) > width
    if tied.any():
        order[tied] = np.argsort(-key[tied], axis=1, kind="stable")[:, :width]
    return order


def _sorted_distinct(values: np.ndarray) -> list[Any]:
    """The distinct values of ``values`` in sorted order (None last)."""
    distinct = set(values.tolist())
    return sorted(v for v in distinct if v is not None) + ([None] if None in distinct else [])


# -- the daily table ----------------------------------------------------------------------


def recommendations_rows(
    conn: duckdb.DuckDBPyConnection, day: date, settings: RecommendationConfig | None
) -> pl.DataFrame:
    """The recommendations of ``day``: per customer of customer_segments that day, the
    ``top_n`` products ranked, one row each (see the module docstring)."""
    settings = settings or RecommendationConfig()
    start, recent_from = _window(day, settings)
    purchases = purchase_matrix(purchases_frame(conn, start, day), recent_from)
    targets = _segments(conn, day).select("customer_id", "segment_id")
    ranked = rank(purchases, targets, settings, "model", settings.top_n)
    return _rows(day, targets, purchases, ranked)


def _rows(day: date, targets: pl.DataFrame, purchases: Purchases, ranked: Ranked) -> pl.DataFrame:
    target, position = np.nonzero(ranked.products >= 0)
    if target.size == 0:
        return pl.DataFrame(schema=SCHEMA)
    products = pl.Series(purchases.products.tolist(), dtype=pl.String)
    chosen = ranked.products[target, position]
    return pl.DataFrame(
        {
            "customer_id": targets["customer_id"].gather(target),
            "rank": pl.Series(position + 1, dtype=pl.Int32),
            "product_id": products.gather(chosen),
            "score": pl.Series(ranked.scores[target, position], dtype=pl.Float64).round(6),
            "from_model": pl.Series(ranked.from_model[target, position]),
            "segment_id": targets["segment_id"].gather(target).cast(pl.Int64),
        }
    ).select(
        pl.lit(day, dtype=pl.Date).alias("as_of_date"),
        "customer_id",
        "rank",
        "product_id",
        "score",
        pl.when("from_model")
        .then(pl.lit("model"))
        .otherwise(pl.lit("segment_popularity"))
        .alias("source"),
        "segment_id",
    )


def summarize_recommendations(
    conn: duckdb.DuckDBPyConnection,
    start: date,
    end: date,
    last: pl.DataFrame | None,
    settings: RecommendationConfig | None,
) -> dict[str, Any]:
    """Run metadata from the last day's rows (no customer ids): customers, the share of rows
    the model filled, distinct products recommended, and the most recommended products."""
    if last is None or last.height == 0:
        return {}
    top = last.group_by("product_id").len().sort(["len", "product_id"], descending=[True, False])
    return {
        "customers": last["customer_id"].n_unique(),
        "model_share": round(float((last["source"] == "model").mean()), 4),
        "distinct_products": last["product_id"].n_unique(),
        "most_recommended": MetadataValue.md(
            markdown_table(["product_id", "customers"], list(top.head(10).iter_rows()))
        ),
    }


# -- evaluation ---------------------------------------------------------------------------


def ranking_metrics(
    top: np.ndarray, relevant: list[set[int]], k: int = EVALUATION_K
) -> dict[str, float]:
    """Hit rate, recall and NDCG at ``k`` of top lists ``top`` (rows of product indexes, -1
    for none) against each row's ``relevant`` products (binary gains; recall divides by the
    number of relevant products, NDCG's ideal ranks min(k, that number) first)."""
    hits, recalls, ndcgs = [], [], []
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    for row, wanted in zip(top[:, :k], relevant, strict=True):
        gains = np.array([p in wanted for p in row], dtype=np.float64)
        hits.append(float(gains.any()))
        recalls.append(gains.sum() / len(wanted))
        ideal = discount[: min(k, len(wanted))].sum()
        ndcgs.append(float((gains * discount[: gains.size]).sum() / ideal))
    return {
        f"hit_rate_at_{k}": round(float(np.mean(hits)), 4),
        f"recall_at_{k}": round(float(np.mean(recalls)), 4),
        f"ndcg_at_{k}": round(float(np.mean(ndcgs)), 4),
    }


def evaluate_recommendations(
    conn: duckdb.DuckDBPyConnection,
    cutoff: date,
    horizon_days: int,
    settings: RecommendationConfig | None = None,
    k: int = EVALUATION_K,
) -> dict[str, Any]:
    """Time holdout: rank on the purchases up to ``cutoff`` (as for the table on that day)
    and compare with what customers bought in (cutoff, cutoff + horizon_days].

    Evaluated customers: those of customer_segments on ``cutoff`` who bought in the horizon a
    product they had not bought in the ``recent_days`` up to the cutoff; their relevant
    products are those (a product bought again within the exclusion window cannot be
    recommended by any ranker, so it is not counted; a product not seen in the history window
    stays relevant and counts as a miss for every ranker). Returns the counts and, per ranker
    (``model`` = the configured method, ``global_popularity``, ``segment_popularity``), hit
    rate, recall and NDCG at ``k``.
    """
    settings = settings or RecommendationConfig()
    start, recent_from = _window(cutoff, settings)
    history = purchases_frame(conn, start, cutoff)
    purchases = purchase_matrix(history, recent_from)
    later = purchases_frame(conn, cutoff + timedelta(days=1), cutoff + timedelta(days=horizon_days))
    segments = _segments(conn, cutoff).select("customer_id", "segment_id")
    recent = history.filter(pl.col("last_order_date") >= recent_from)
    bought = later.select("customer_id", "product_id").join(segments, on="customer_id")
    wanted = bought.join(
        recent.select("customer_id", "product_id"), on=["customer_id", "product_id"], how="anti"
    )
    index = {p: i for i, p in enumerate(purchases.products.tolist())}
    grouped = (
        wanted.group_by("customer_id", "segment_id").agg(pl.col("product_id")).sort("customer_id")
    )
    targets = grouped.select("customer_id", "segment_id")
    # a product never seen in the window gets an index no top list holds
    relevant = [
        {index.get(p, -2 - i) for i, p in enumerate(items)}
        for items in grouped["product_id"].to_list()
    ]
    figures: dict[str, Any] = {
        "cutoff": cutoff.isoformat(),
        "horizon_days": horizon_days,
        "method": settings.method,
        "customers_in_segments": segments.height,
        "customers_buying_in_horizon": bought["customer_id"].n_unique(),
        "customers_evaluated": targets.height,
        "relevant_products": int(sum(len(r) for r in relevant)),
        "relevant_unseen_in_history": int(sum(1 for r in relevant for p in r if p < -1)),
        "catalogue_seen": int(purchases.products.size),
    }
    if targets.height == 0:
        return figures
    for ranker in RANKERS:
        ranked = rank(purchases, targets, settings, ranker, k)
        figures[ranker] = ranking_metrics(ranked.products, relevant, k)
    return figures


RECOMMENDATIONS_TABLE = DailyTable(
    name="recommendations",
    group="activation",
    deps=("stg_orders", "customer_segments"),
    description=(
        "Per customer of customer_segments and day, the top_n products to recommend next, "
        "ranked: one row per (customer, rank). Method: item-to-item co-purchase (cosine "
        "over the customer x product orders of the last history_days) blended with the "
        "popularity of the product in the customer's segment; segment popularity alone where "
        "the customer bought nothing in the window or the model has nothing (more) to say "
        "(source segment_popularity). Products the customer bought in the last recent_days "
        "are never recommended. Source: sql/activation/purchases.sql, customer_segments. "
        "Method chosen on a time holdout against global and segment popularity "
        "(docs/activation.md)."
    ),
    compute=recommendations_rows,
    config=RecommendationConfig,
    summarize=summarize_recommendations,
    columns=COLUMNS,
)
