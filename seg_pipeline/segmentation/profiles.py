"""What each segment looks like: profiles, readable names and surrogate decision rules.

Everything here works on customer_features in original units (days, orders, money, shares), so an
analyst can read the output without knowing the preprocessing.  Outputs carry no customer ids and
no personal data: only segment ids, counts, feature names and aggregates.

The profile table is *wide*, one row per segment, because that is what reads best as a DuckDB
table (``SELECT segment_id, n_customers, count_orders_mean ... FROM segment_profiles``) and what a
dashboard shows; :func:`profiles_long` unpivots it when one row per (segment, feature) is wanted.

The structured CRM attributes (age band, gender, country) are profiled as the share of each
category in the segment against the whole base (:func:`attribute_shares`), one list column of
the profile table; they describe segments and are never segmentation or rule features.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from sklearn.tree import DecisionTreeClassifier

from seg_pipeline.segmentation.config import DEFAULT_ZERO_FILL
from seg_pipeline.segmentation.preprocess import filled_columns

# The customer_features columns an analyst reads to tell segments apart (recency, frequency,
# monetary, price sensitivity, web engagement, marketing, tenure, satisfaction).
PROFILE_FEATURES: tuple[str, ...] = (
    "recency_days",
    "count_orders",
    "lifetime_spend",
    "avg_order_value",
    "discount_share",
    "count_sessions_30d",
    "count_add_to_cart_30d",
    "cart_abandonment_rate_30d",
    "campaign_open_rate",
    "tenure_days",
    "return_rate",
    "avg_review_rating",
)

# The customer_features attributes profiled as category shares (descriptive only: not in the
# segmentation's features, not in the surrogate rules, not in the names).
PROFILE_ATTRIBUTES: tuple[str, ...] = ("age_band", "gender", "country")
# Categories in reading order; an attribute without one (country) is ordered by base share.
AGE_BANDS: tuple[str, ...] = ("<25", "25-34", "35-44", "45-54", "55-64", "65+")
CATEGORY_ORDER: dict[str, tuple[str, ...]] = {"age_band": AGE_BANDS, "gender": ("F", "M", "X")}
# Category of a null value (shown last), and of the categories folded by attribute_share_table.
UNKNOWN = "unknown"
OTHER = "other"
# The profile column holding the shares: a list of SHARE_STRUCT per segment.
SHARES_COLUMN = "attribute_shares"
SHARE_STRUCT = pl.Struct(
    {
        "attribute": pl.String,
        "category": pl.String,
        "share": pl.Float64,
        "base_share": pl.Float64,
    }
)

# Short labels used in fallback names ("High campaign open rate").
FEATURE_LABELS: dict[str, str] = {
    "recency_days": "days since last order",
    "count_orders": "order count",
    "lifetime_spend": "lifetime spend",
    "avg_order_value": "order value",
    "discount_share": "discount share",
    "count_sessions_30d": "web sessions",
    "count_add_to_cart_30d": "add-to-carts",
    "cart_abandonment_rate_30d": "cart abandonment",
    "campaign_open_rate": "campaign open rate",
    "tenure_days": "tenure",
    "return_rate": "return rate",
    "avg_review_rating": "review rating",
}


@dataclass(frozen=True)
class NamingRule:
    """A named pattern of standardised differences.

    Parameters
    ----------
    name
        Name given to a segment that matches.
    conditions
        ``(feature, sign)`` pairs: ``+1`` means the segment mean must be above the base by at
        least ``min_sd`` standard deviations, ``-1`` below.
    min_sd
        Smallest signed standardised difference every condition needs.
    """

    name: str
    conditions: tuple[tuple[str, int], ...]
    min_sd: float = 0.25


# Checked against every segment; the strongest matches are handed out first (see name_segments).
NAMING_RULES: tuple[NamingRule, ...] = (
    NamingRule(
        "High-value loyal",
        (("count_orders", 1), ("lifetime_spend", 1), ("tenure_days", 1)),
    ),
    NamingRule(
        "At-risk big spenders",
        (
            ("avg_order_value", 1),
            ("tenure_days", 1),
            ("recency_days", 1),
            ("count_sessions_30d", -1),
        ),
    ),
    NamingRule("At-risk long-timers", (("tenure_days", 1), ("count_sessions_30d", -1))),
    NamingRule(
        "Window shoppers",
        (("count_sessions_30d", 1), ("count_add_to_cart_30d", 1), ("count_orders", -1)),
    ),
    NamingRule("Deal seekers", (("discount_share", 1),), min_sd=0.5),
    NamingRule("New customers", (("tenure_days", -1),), min_sd=0.5),
    NamingRule("Dormant one-timers", (("count_orders", -1), ("count_sessions_30d", -1))),
)


def _numeric(features: pl.DataFrame, names: Sequence[str]) -> list[pl.Expr]:
    return [pl.col(f).cast(pl.Float64).fill_nan(None).alias(f) for f in names]


def segment_profiles(
    features: pl.DataFrame,
    segments: pl.DataFrame,
    profile_features: Sequence[str] = PROFILE_FEATURES,
    attributes: Sequence[str] = PROFILE_ATTRIBUTES,
) -> pl.DataFrame:
    """One row per segment describing it against the whole customer base.

    Parameters
    ----------
    features
        customer_features rows (one per customer) with ``customer_id`` and the profile features.
    segments
        ``customer_id`` and ``segment_id`` (int) of the customers to profile; the base is the
        customers present in both frames.
    profile_features
        Columns to profile; those missing from ``features`` are skipped.
    attributes
        Categorical columns profiled as category shares (:func:`attribute_shares`); those
        missing from ``features`` are skipped.

    Returns
    -------
    pl.DataFrame
        Sorted by ``segment_id``, columns ``segment_id``, ``n_customers``, ``share`` (of the
        base), then per feature ``f``: ``f_mean``, ``f_median``, ``f_base_mean`` and
        ``f_base_median`` (of the whole base), ``f_lift`` (segment mean / base mean, null when
        the base mean is 0 or null) and ``f_std_diff`` (segment mean minus base
        mean in base standard deviations, null when the deviation is 0 or null); then
        ``top_features``: the three features with the largest absolute ``std_diff``, signed, as
        text (``"count_orders +1.5 sd, tenure_days +1.4 sd, ..."``); last ``attribute_shares``:
        the segment's rows of :func:`attribute_shares` as a list of structs ``attribute``,
        ``category``, ``share``, ``base_share``.  Nulls are ignored by means and medians
        (``recency_days`` is then over customers with an order).
    """
    feats = [f for f in profile_features if f in features.columns]
    joined = segments.select(pl.col("customer_id"), pl.col("segment_id").cast(pl.Int64)).join(
        features.select(["customer_id", *_numeric(features, feats)]), on="customer_id"
    )
    n_total = joined.height
    base = joined.select(
        *[pl.col(f).mean().alias(f"{f}__mean") for f in feats],
        *[pl.col(f).median().alias(f"{f}__median") for f in feats],
        *[pl.col(f).std(ddof=0).alias(f"{f}__std") for f in feats],
    ).row(0, named=True)

    aggs: list[pl.Expr] = [pl.len().cast(pl.Int64).alias("n_customers")]
    for f in feats:
        aggs += [pl.col(f).mean().alias(f"{f}_mean"), pl.col(f).median().alias(f"{f}_median")]
    prof = joined.group_by("segment_id").agg(aggs).sort("segment_id")
    prof = prof.with_columns(
        (pl.col("n_customers") / max(n_total, 1)).alias("share"),
    )
    cols: list[pl.Expr] = []
    for f in feats:
        mean, std = base[f"{f}__mean"], base[f"{f}__std"]
        lift = (
            pl.col(f"{f}_mean") / mean
            if mean is not None and mean != 0
            else pl.lit(None, dtype=pl.Float64)
        )
        diff = (
            (pl.col(f"{f}_mean") - mean) / std
            if std is not None and std > 0 and mean is not None
            else pl.lit(None, dtype=pl.Float64)
        )
        cols += [
            pl.lit(mean, dtype=pl.Float64).alias(f"{f}_base_mean"),
            pl.lit(base[f"{f}__median"], dtype=pl.Float64).alias(f"{f}_base_median"),
            lift.alias(f"{f}_lift"),
            diff.alias(f"{f}_std_diff"),
        ]
    prof = prof.with_columns(cols)
    ordered = ["segment_id", "n_customers", "share"]
    for f in feats:
        ordered += [
            f"{f}_mean",
            f"{f}_median",
            f"{f}_base_mean",
            f"{f}_base_median",
            f"{f}_lift",
            f"{f}_std_diff",
        ]
    prof = prof.select(ordered)
    tops = [_top_features(row, feats) for row in prof.iter_rows(named=True)]
    prof = prof.with_columns(pl.Series("top_features", tops, dtype=pl.String))
    shares = (
        attribute_shares(features, segments, attributes)
        .group_by("segment_id", maintain_order=True)
        .agg(pl.struct(*SHARE_STRUCT.to_schema()).alias(SHARES_COLUMN))
    )
    return prof.join(shares, on="segment_id", how="left").with_columns(
        pl.col(SHARES_COLUMN).fill_null([]).cast(pl.List(SHARE_STRUCT))
    )


def _category_rank(attribute: str, base: pl.DataFrame) -> pl.DataFrame:
    """``base`` (``category``, ``base_share``) with the display ``rank`` of each category: the
    attribute's :data:`CATEGORY_ORDER`, else by base share (ties by label); unknown last."""
    order = CATEGORY_ORDER.get(attribute, ())
    ranked = base.sort(
        pl.col("category") == UNKNOWN,
        pl.col("category").replace_strict(
            {c: i for i, c in enumerate(order)}, default=len(order), return_dtype=pl.Int64
        ),
        -pl.col("base_share"),
        pl.col("category"),
    )
    return ranked.with_row_index("rank")


def attribute_shares(
    features: pl.DataFrame,
    segments: pl.DataFrame,
    attributes: Sequence[str] = PROFILE_ATTRIBUTES,
) -> pl.DataFrame:
    """Share of each category of each attribute in every segment and in the whole base.

    Parameters
    ----------
    features
        customer_features rows (one per customer) with ``customer_id`` and the attributes.
    segments
        ``customer_id`` and ``segment_id`` of the customers to profile; the base is the
        customers present in both frames.
    attributes
        Categorical columns; those missing from ``features`` are skipped.

    Returns
    -------
    pl.DataFrame
        ``segment_id``, ``attribute``, ``category`` (a null value is :data:`UNKNOWN`),
        ``share`` (customers of the segment in the category / customers of the segment) and
        ``base_share`` (the same over the whole base): every category present in the base for
        every segment (share 0 where the segment has none), so the shares of one segment and
        attribute sum to 1. Sorted by segment, attribute (in ``attributes`` order) and
        category (age bands and genders in their order, others by base share; unknown last).
        Only shares and category labels: no customer ids, no single customer's value.
    """
    attrs = [a for a in attributes if a in features.columns]
    joined = segments.select(pl.col("customer_id"), pl.col("segment_id").cast(pl.Int64)).join(
        features.select(
            "customer_id", *(pl.col(a).cast(pl.String).fill_null(UNKNOWN) for a in attrs)
        ),
        on="customer_id",
    )
    schema = {"segment_id": pl.Int64, **SHARE_STRUCT.to_schema()}
    if not attrs or joined.is_empty():
        return pl.DataFrame(schema=schema)
    sizes = joined.group_by("segment_id").agg(pl.len().alias("n_segment"))
    frames = []
    for order, a in enumerate(attrs):
        base = joined.group_by(pl.col(a).alias("category")).agg(
            (pl.len() / joined.height).alias("base_share")
        )
        counts = joined.group_by("segment_id", pl.col(a).alias("category")).agg(pl.len().alias("n"))
        frames.append(
            sizes.join(_category_rank(a, base), how="cross")
            .join(counts, on=["segment_id", "category"], how="left")
            .with_columns(
                pl.lit(a).alias("attribute"),
                pl.lit(order).alias("attribute_order"),
                (pl.col("n").fill_null(0) / pl.col("n_segment")).alias("share"),
            )
        )
    return (
        pl.concat(frames).sort("segment_id", "attribute_order", "rank").select(*schema).cast(schema)
    )


def attribute_shares_of(profiles: pl.DataFrame) -> pl.DataFrame:
    """The ``attribute_shares`` column of ``profiles`` as the long frame of
    :func:`attribute_shares` (``segment_id``, ``attribute``, ``category``, ``share``,
    ``base_share``), in its order; empty without that column."""
    if SHARES_COLUMN not in profiles.columns:
        return pl.DataFrame(schema={"segment_id": pl.Int64, **SHARE_STRUCT.to_schema()})
    return (
        profiles.select(pl.col("segment_id").cast(pl.Int64), SHARES_COLUMN)
        .explode(SHARES_COLUMN)
        .drop_nulls(SHARES_COLUMN)
        .unnest(SHARES_COLUMN)
    )


def attribute_share_table(
    profiles: pl.DataFrame, attribute: str, max_categories: int | None = None
) -> pl.DataFrame:
    """One attribute's shares as a table: a row for the whole base, then one per segment.

    Parameters
    ----------
    profiles
        Output of :func:`segment_profiles` (its ``attribute_shares`` column).
    attribute
        The attribute shown, e.g. ``"country"``.
    max_categories
        Show at most this many known categories, those with the largest base shares; the
        others are added up as :data:`OTHER` (before :data:`UNKNOWN`). ``None``: all.

    Returns
    -------
    pl.DataFrame
        ``segment_id`` (null on the first row, the whole base), then one Float64 column per
        category in display order holding its share; each row sums to 1. Empty (no rows) when
        ``attribute`` was not profiled.
    """
    long = attribute_shares_of(profiles).filter(pl.col("attribute") == attribute)
    if long.is_empty():
        return pl.DataFrame(schema={"segment_id": pl.Int64})
    first = long.filter(pl.col("segment_id") == long["segment_id"][0])
    categories = first["category"].to_list()
    known = first.filter(pl.col("category") != UNKNOWN)
    if max_categories is not None and known.height > max_categories:
        top = set(
            known.sort(-pl.col("base_share"), pl.col("category"))
            .head(max_categories)["category"]
            .to_list()
        )
        folded = [c for c in categories if c in top] + [OTHER]
        folded += [UNKNOWN] if UNKNOWN in categories else []
        label = (
            pl.when(pl.col("category").is_in([*top, UNKNOWN]))
            .then(pl.col("category"))
            .otherwise(pl.lit(OTHER))
        )
        long = long.group_by("segment_id", label.alias("category"), maintain_order=True).agg(
            pl.col("share").sum(), pl.col("base_share").sum()
        )
        categories = folded
    segs = long["segment_id"].unique(maintain_order=True).to_list()
    share = {(s, c): v for s, c, v in long.select("segment_id", "category", "share").iter_rows()}
    base = dict(zip(long["category"], long["base_share"], strict=True))
    rows = [{"segment_id": None, **{c: base[c] for c in categories}}]
    rows += [{"segment_id": s, **{c: share[s, c] for c in categories}} for s in segs]
    return pl.DataFrame(
        rows, schema={"segment_id": pl.Int64, **dict.fromkeys(categories, pl.Float64)}
    )


def profile_features_of(profiles: pl.DataFrame) -> list[str]:
    """The features profiled in ``profiles`` (those with a ``_std_diff`` column), in order."""
    return [c.removesuffix("_std_diff") for c in profiles.columns if c.endswith("_std_diff")]


def _std_diffs(row: Mapping[str, Any], feats: Sequence[str]) -> dict[str, float]:
    out = {}
    for f in feats:
        v = row.get(f"{f}_std_diff")
        if v is not None and math.isfinite(v):
            out[f] = float(v)
    return out


def _top_features(row: Mapping[str, Any], feats: Sequence[str], n: int = 3) -> str:
    diffs = _std_diffs(row, feats)
    # Stable order: largest |difference| first, feature order breaks ties.
    top = sorted(diffs.items(), key=lambda kv: -abs(kv[1]))[:n]
    return ", ".join(f"{f} {d:+.1f} sd" for f, d in top)


def profiles_long(profiles: pl.DataFrame) -> pl.DataFrame:
    """``profiles`` as one row per (segment, feature).

    Returns
    -------
    pl.DataFrame
        ``segment_id``, ``feature``, ``segment_mean``, ``segment_median``, ``lift``,
        ``std_diff``.
    """
    frames = [
        profiles.select(
            pl.col("segment_id"),
            pl.lit(f).alias("feature"),
            pl.col(f"{f}_mean").alias("segment_mean"),
            pl.col(f"{f}_median").alias("segment_median"),
            pl.col(f"{f}_lift").alias("lift"),
            pl.col(f"{f}_std_diff").alias("std_diff"),
        )
        for f in profile_features_of(profiles)
    ]
    return pl.concat(frames).sort("segment_id", maintain_order=True)


def _rule_score(rule: NamingRule, diffs: Mapping[str, float]) -> float | None:
    """Mean signed difference over the rule's conditions, or None if one is not met."""
    signed = []
    for feat, sign in rule.conditions:
        d = diffs.get(feat)
        if d is None or sign * d < rule.min_sd:
            return None
        signed.append(sign * d)
    return float(np.mean(signed))


def _fallback_names(diffs: Mapping[str, float]) -> list[str]:
    ranked = sorted(diffs.items(), key=lambda kv: -abs(kv[1]))
    names = []
    for feat, d in ranked:
        label = FEATURE_LABELS.get(feat, feat.replace("_", " "))
        names.append(f"{'High' if d > 0 else 'Low'} {label}")
    return names or ["Typical customers"]


def name_segments(
    profiles: pl.DataFrame, rules: Sequence[NamingRule] = NAMING_RULES
) -> dict[int, str]:
    """Short human-readable segment names from transparent rules on standardised differences.

    Every rule in ``rules`` is scored on every segment: a rule matches when each of its
    conditions holds (the segment mean is on the stated side of the base by at least
    ``min_sd`` standard deviations) and scores the mean of those signed differences.  Matches
    are handed out strongest first, each name to one segment only; a segment left without a
    name is named after its most distinctive feature not yet used as a name ("High campaign
    open rate", "Low tenure"), and a name still taken gets a suffix (" 2", " 3").

    Parameters
    ----------
    profiles
        Output of :func:`segment_profiles`.
    rules
        Naming rules; :data:`NAMING_RULES` by default.

    Returns
    -------
    dict[int, str]
        Segment id to name; names are unique and the result is deterministic.
    """
    feats = profile_features_of(profiles)
    diffs = {
        int(row["segment_id"]): _std_diffs(row, feats) for row in profiles.iter_rows(named=True)
    }
    candidates = []
    for order, rule in enumerate(rules):
        for seg, d in diffs.items():
            score = _rule_score(rule, d)
            if score is not None:
                candidates.append((-score, order, seg, rule.name))
    candidates.sort()
    names: dict[int, str] = {}
    used: set[str] = set()
    for _, _, seg, name in candidates:
        if seg not in names and name not in used:
            names[seg] = name
            used.add(name)
    for seg in sorted(diffs):
        if seg in names:
            continue
        options = _fallback_names(diffs[seg])
        name = next((o for o in options if o not in used), options[0])
        base, k = name, 2
        while name in used:
            name, k = f"{base} {k}", k + 1
        names[seg] = name
        used.add(name)
    return dict(sorted(names.items()))


# --------------------------------------------------------------------------- surrogate rules


@dataclass(frozen=True)
class Condition:
    """``lower < feature <= upper`` (either bound may be open)."""

    feature: str
    lower: float | None = None
    upper: float | None = None
    integer: bool = False

    def text(self) -> str:
        """The condition as an analyst reads it, e.g. ``7 < tenure_days <= 60``."""

        def fmt(v: float) -> str:
            return str(int(v)) if self.integer else _fmt_float(v)

        f = self.feature
        if self.lower is not None and self.upper is not None:
            return f"{fmt(self.lower)} < {f} <= {fmt(self.upper)}"
        if self.upper is not None:
            return f"{f} <= {fmt(self.upper)}"
        if self.lower is not None:
            if self.integer:
                return f"{f} >= {int(self.lower) + 1}"
            return f"{f} > {fmt(self.lower)}"
        return f"{f} is any value"

    def mask(self, x: np.ndarray) -> np.ndarray:
        """Which values of ``x`` satisfy the condition."""
        m = np.ones(len(x), dtype=bool)
        if self.lower is not None:
            m &= x > self.lower
        if self.upper is not None:
            m &= x <= self.upper
        return m

    def as_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "lower": self.lower, "upper": self.upper}


def _fmt_float(v: float) -> str:
    text = f"{v:.6f}".rstrip("0").rstrip(".")
    return text if text not in ("-0", "") else "0"


@dataclass(frozen=True)
class SurrogateRules:
    """Decision rules of a shallow tree that mimics the segmentation.

    Attributes
    ----------
    rules
        One row per rule: ``segment_id``, ``rule`` (text), ``conditions`` (list of structs
        ``feature``, ``lower``, ``upper``: ``lower < feature <= upper`` on the filled
        features), ``support`` (customers the rule covers), ``precision`` (share of them in the
        segment), ``recall`` (share of the segment covered) and ``predicts_segment`` (false for
        the fallback rule of a segment no leaf predicts: the leaf holding most of its members).
    fidelity
        Accuracy of the tree against the segment labels (share of customers it puts in their
        segment).
    max_depth
        Depth limit of the tree.
    features
        Features the tree could split on.
    """

    rules: pl.DataFrame
    fidelity: float
    max_depth: int
    features: tuple[str, ...]

    def by_segment(self) -> dict[int, list[dict[str, Any]]]:
        """Rules per segment id, each a dict of the columns of :attr:`rules`."""
        out: dict[int, list[dict[str, Any]]] = {}
        for row in self.rules.iter_rows(named=True):
            out.setdefault(int(row["segment_id"]), []).append(row)
        return out


def rule_input(features: pl.DataFrame, rule_features: Sequence[str]) -> pl.DataFrame:
    """The rule features in original units with nulls filled as the rules read them.

    ``recency_days`` without an order becomes ``observed_days`` (no order in all the time we
    could see), the zero-fill columns of the segmentation (return, cancel, discounted-order
    shares) become 0, other nulls (rates without a denominator, averages without orders) take
    the column median.  Everything is Float64.
    """
    exprs = filled_columns(features, rule_features, DEFAULT_ZERO_FILL)
    return features.select(e.fill_null(e.median()).fill_null(0.0) for e in exprs)


def _readable_threshold(values: np.ndarray, threshold: float, tolerance: float) -> float:
    """The roundest number splitting ``values`` (nearly) as ``threshold`` does.

    Fewest decimals first; a candidate is taken when it moves at most ``tolerance`` (a share)
    of the values to the other side, so ``0.0737`` reads ``0.07`` when that changes a handful
    of customers, and stays exact otherwise.
    """
    side = values <= threshold
    limit = tolerance * len(values)
    for decimals in range(7):
        for candidate in (
            round(float(threshold), decimals),
            math.floor(float(threshold) * 10**decimals) / 10**decimals,
        ):
            if int(((values <= candidate) != side).sum()) <= limit:
                return candidate
    return float(threshold)


def surrogate_rules(
    features: pl.DataFrame,
    labels: np.ndarray,
    rule_features: Sequence[str] = PROFILE_FEATURES,
    max_depth: int = 3,
    seed: int = 0,
    min_leaf_share: float = 0.01,
    round_tolerance: float = 0.005,
) -> SurrogateRules:
    """Readable rules ("recency_days <= 21 and count_orders >= 6") describing each segment.

    A shallow :class:`~sklearn.tree.DecisionTreeClassifier` (entropy, balanced class weights so
    small segments get leaves of their own) is fitted on the original-unit features (nulls
    filled by :func:`rule_input`) to the segment labels.  Each leaf is a rule:
    the conditions on its path, merged per feature into one interval, thresholds rounded
    (whole numbers for counts and days, the fewest decimals that move at most
    ``round_tolerance`` of the customers otherwise).
    A segment's rules are the leaves that predict it; a segment no leaf predicts gets the leaf
    holding most of its members (``predicts_segment`` false).  Support and precision are
    measured by applying the rounded conditions to the data.

    Parameters
    ----------
    features
        customer_features rows, in the order of ``labels``.
    labels
        Segment id of each row.
    rule_features
        Columns the tree may split on.
    max_depth
        Depth of the tree (rules have at most this many conditions).
    seed
        Random state of the tree (ties between equally good splits).
    min_leaf_share
        Smallest leaf as a share of the customers, so no rule describes a handful.
    round_tolerance
        Share of customers a threshold may move across a split when it is rounded to fewer
        decimals (support and precision are measured after rounding).

    Returns
    -------
    SurrogateRules
        The rules and the tree's fidelity (accuracy against ``labels``).
    """
    labels = np.asarray(labels)
    if len(labels) != features.height:
        raise ValueError(f"{len(labels)} labels for {features.height} feature rows")
    feats = tuple(rule_features)
    frame = rule_input(features, feats)
    x = frame.to_numpy().astype(np.float64)
    tree = DecisionTreeClassifier(
        max_depth=max_depth,
        min_samples_leaf=max(1, int(min_leaf_share * len(labels))),
        criterion="entropy",
        class_weight="balanced",
        random_state=seed,
    ).fit(x, labels)
    fidelity = float((tree.predict(x) == labels).mean())

    t = tree.tree_
    integer = [bool(np.all(x[:, j] == np.round(x[:, j]))) for j in range(x.shape[1])]
    classes = tree.classes_
    leaves: list[tuple[Any, list[Condition]]] = []

    def walk(node: int, bounds: dict[int, list[float | None]], order: list[int]) -> None:
        if t.children_left[node] == -1:
            conds = []
            for j in order:
                lower, upper = bounds[j]
                conds.append(Condition(feats[j], lower, upper, integer[j]))
            leaves.append((classes[int(np.argmax(t.value[node][0]))], conds))
            return
        j = int(t.feature[node])
        if integer[j]:
            thr = float(math.floor(t.threshold[node]))
        else:
            thr = _readable_threshold(x[:, j], float(t.threshold[node]), round_tolerance)
        new_order = order if j in order else [*order, j]
        lower, upper = bounds.get(j, [None, None])
        left = dict(bounds)
        left[j] = [lower, thr if upper is None else min(upper, thr)]
        walk(int(t.children_left[node]), left, new_order)
        right = dict(bounds)
        right[j] = [thr if lower is None else max(lower, thr), upper]
        walk(int(t.children_right[node]), right, new_order)

    walk(0, {}, [])

    seg_sizes = {c: int((labels == c).sum()) for c in np.unique(labels)}
    records = []
    leaf_stats = []
    for predicted, conds in leaves:
        mask = np.ones(len(labels), dtype=bool)
        for c in conds:
            mask &= c.mask(x[:, feats.index(c.feature)])
        leaf_stats.append((conds, mask, labels[mask], predicted))
    for seg in classes:
        rows = [s for s in leaf_stats if s[3] == seg]
        predicts = True
        if not rows:
            best = max(leaf_stats, key=lambda s: int((s[2] == seg).sum()))
            rows, predicts = [best], False
        for conds, mask, covered, _ in rows:
            hits = int((covered == seg).sum())
            support = int(mask.sum())
            records.append(
                {
                    "segment_id": int(seg),
                    "rule": " and ".join(c.text() for c in conds) or "all customers",
                    "conditions": [c.as_dict() for c in conds],
                    "support": support,
                    "precision": hits / support if support else 0.0,
                    "recall": hits / seg_sizes[seg] if seg_sizes[seg] else 0.0,
                    "predicts_segment": predicts,
                }
            )
    schema = {
        "segment_id": pl.Int64,
        "rule": pl.String,
        "conditions": pl.List(
            pl.Struct({"feature": pl.String, "lower": pl.Float64, "upper": pl.Float64})
        ),
        "support": pl.Int64,
        "precision": pl.Float64,
        "recall": pl.Float64,
        "predicts_segment": pl.Boolean,
    }
    rules = pl.DataFrame(records, schema=schema).sort(
        ["segment_id", "support"], descending=[False, True]
    )
    return SurrogateRules(rules=rules, fidelity=fidelity, max_depth=max_depth, features=feats)


def apply_conditions(features: pl.DataFrame, conditions: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Which rows of ``features`` a rule's structured conditions cover.

    Parameters
    ----------
    features
        customer_features rows (nulls are filled as :func:`rule_input` does).
    conditions
        ``{"feature", "lower", "upper"}`` mappings meaning ``lower < feature <= upper``.
    """
    feats = list(dict.fromkeys(c["feature"] for c in conditions))
    frame = rule_input(features, feats) if feats else features.select([])
    mask = np.ones(features.height, dtype=bool)
    for c in conditions:
        x = frame[c["feature"]].to_numpy()
        if c.get("lower") is not None:
            mask &= x > c["lower"]
        if c.get("upper") is not None:
            mask &= x <= c["upper"]
    return mask
