"""Segment profiles, names and surrogate rules on a small generated frame of customer features
(the month's 1,000 customers simulated by the generator without the pipeline: see
``persona_features``)."""

from __future__ import annotations

import re

import numpy as np
import polars as pl
import pytest
from sklearn.cluster import KMeans

from seg_pipeline.segmentation.config import DEFAULT_FEATURES
from seg_pipeline.segmentation.profiles import (
    AGE_BANDS,
    OTHER,
    PROFILE_ATTRIBUTES,
    PROFILE_FEATURES,
    SHARES_COLUMN,
    UNKNOWN,
    apply_conditions,
    attribute_share_table,
    attribute_shares_of,
    name_segments,
    profiles_long,
    segment_profiles,
    surrogate_rules,
)
from tests.segmentation.persona_features import persona_features, persona_matrix

PERSONAL = ("email", "phone", "birth", "first_name", "last_name", "address", "customer_id")


@pytest.fixture(scope="module")
def features() -> pl.DataFrame:
    """customer_features of the generated customers on the last day, sorted by id."""
    return persona_features().features


@pytest.fixture(scope="module")
def labels() -> np.ndarray:
    return KMeans(6, n_init=10, random_state=0).fit_predict(persona_matrix())


@pytest.fixture(scope="module")
def segments(features: pl.DataFrame, labels: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame({"customer_id": features["customer_id"], "segment_id": labels})


@pytest.fixture(scope="module")
def profiles(features: pl.DataFrame, segments: pl.DataFrame) -> pl.DataFrame:
    return segment_profiles(features, segments)


def test_profile_features_exist(features: pl.DataFrame) -> None:
    assert 10 <= len(PROFILE_FEATURES) <= 14
    assert set(PROFILE_FEATURES) <= set(features.columns)


def test_sizes_and_shares(profiles: pl.DataFrame, labels: np.ndarray) -> None:
    assert profiles["segment_id"].to_list() == sorted(set(labels.tolist()))
    expected = {int(s): int((labels == s).sum()) for s in np.unique(labels)}
    assert dict(zip(profiles["segment_id"], profiles["n_customers"], strict=True)) == expected
    assert profiles["share"].sum() == pytest.approx(1.0)
    assert not any(any(p in c for p in PERSONAL) for c in profiles.columns)


def test_means_medians_and_lift_match_polars(
    profiles: pl.DataFrame, features: pl.DataFrame, labels: np.ndarray
) -> None:
    frame = features.with_columns(pl.Series("seg", labels))
    for feature in ("count_orders", "recency_days", "campaign_open_rate", "count_add_to_cart_30d"):
        col = pl.col(feature).cast(pl.Float64)
        direct = frame.group_by("seg").agg(col.mean().alias("m"), col.median().alias("md"))
        direct = direct.sort("seg")
        base = frame.select(col.mean()).item()
        np.testing.assert_allclose(profiles[f"{feature}_mean"], direct["m"], rtol=1e-12)
        np.testing.assert_allclose(profiles[f"{feature}_median"], direct["md"], rtol=1e-12)
        np.testing.assert_allclose(profiles[f"{feature}_lift"], direct["m"] / base, rtol=1e-12)
    # Nulls are ignored: recency is over customers with an order only.
    assert features["recency_days"].null_count() > 0
    assert profiles["recency_days_mean"].null_count() == 0


def test_lift_of_a_planted_segment(features: pl.DataFrame) -> None:
    orders = features["count_orders"].to_numpy()
    high = (orders >= np.quantile(orders, 0.8)).astype(int)
    segs = pl.DataFrame({"customer_id": features["customer_id"], "segment_id": high})
    prof = segment_profiles(features, segs, ["count_orders", "tenure_days"])
    row = prof.filter(pl.col("segment_id") == 1).row(0, named=True)
    assert row["count_orders_lift"] > 1.5
    assert row["count_orders_std_diff"] > 0.5
    assert row["top_features"].startswith("count_orders +")
    low = prof.filter(pl.col("segment_id") == 0).row(0, named=True)
    assert low["count_orders_lift"] < 1


def test_zero_base_mean_gives_null_lift(features: pl.DataFrame) -> None:
    frame = features.with_columns(pl.lit(0.0).alias("discount_share"))
    segs = pl.DataFrame(
        {"customer_id": frame["customer_id"], "segment_id": np.arange(frame.height) % 2}
    )
    prof = segment_profiles(frame, segs, ["discount_share", "count_orders"])
    assert prof["discount_share_lift"].null_count() == 2
    assert prof["discount_share_std_diff"].null_count() == 2
    assert all("discount_share" not in t for t in prof["top_features"])


def test_top_features_are_signed_and_largest(profiles: pl.DataFrame) -> None:
    pattern = re.compile(r"^(\w+) ([+-]\d+\.\d) sd$")
    for row in profiles.iter_rows(named=True):
        parts = row["top_features"].split(", ")
        assert len(parts) == 3
        diffs = {f: abs(row[f"{f}_std_diff"]) for f in PROFILE_FEATURES}
        named = [pattern.match(p).group(1) for p in parts]
        assert min(diffs[f] for f in named) >= max(d for f, d in diffs.items() if f not in named)


def test_long_format(profiles: pl.DataFrame) -> None:
    long = profiles_long(profiles)
    assert long.height == profiles.height * len(PROFILE_FEATURES)
    assert set(long.columns) >= {"segment_id", "feature", "segment_mean", "lift", "std_diff"}


def test_attribute_shares_sum_to_one_and_match_the_feature_counts(
    profiles: pl.DataFrame, features: pl.DataFrame, labels: np.ndarray
) -> None:
    long = attribute_shares_of(profiles)
    assert long.columns == ["segment_id", "attribute", "category", "share", "base_share"]
    assert long["attribute"].unique(maintain_order=True).to_list() == list(PROFILE_ATTRIBUTES)
    sums = long.group_by("segment_id", "attribute").agg(pl.col("share", "base_share").sum())
    assert sums.height == profiles.height * len(PROFILE_ATTRIBUTES)
    np.testing.assert_allclose(sums["share"], 1.0, rtol=1e-12)
    np.testing.assert_allclose(sums["base_share"], 1.0, rtol=1e-12)
    frame = features.with_columns(pl.Series("seg", labels, dtype=pl.Int64))
    for attribute in PROFILE_ATTRIBUTES:
        category = pl.col(attribute).fill_null(UNKNOWN).alias("category")
        base = frame.group_by(category).agg(pl.len().alias("n"))
        expected_base = {c: n / frame.height for c, n in base.iter_rows()}
        per_segment = frame.group_by("seg", category).agg(pl.len().alias("n"))
        sizes = dict(frame.group_by("seg").len().iter_rows())
        expected = {(s, c): n / sizes[s] for s, c, n in per_segment.iter_rows()}
        rows = long.filter(pl.col("attribute") == attribute)
        for seg, cat, share, base_share in rows.drop("attribute").iter_rows():
            assert base_share == pytest.approx(expected_base[cat])
            assert share == pytest.approx(expected.get((seg, cat), 0.0))  # 0: none in it
        # every category of the base is listed for every segment
        assert rows.height == profiles.height * len(expected_base)
    genders = long.filter(pl.col("attribute") == "gender")["category"].unique().to_list()
    assert set(genders) <= {"F", "M", "X", UNKNOWN} and {"F", "M"} <= set(genders)
    bands = long.filter(pl.col("attribute") == "age_band")["category"].unique(maintain_order=True)
    assert [b for b in AGE_BANDS if b in bands] == [b for b in bands if b != UNKNOWN]
    assert len(bands) >= 4


def test_attributes_are_descriptive_only(profiles: pl.DataFrame) -> None:
    """The attributes are profiled as shares, not used by the model, the rules or the names."""
    assert not set(PROFILE_ATTRIBUTES) & (set(DEFAULT_FEATURES) | set(PROFILE_FEATURES))
    assert not any(c.startswith(PROFILE_ATTRIBUTES) for c in profiles.columns)
    assert profiles.columns[-1] == SHARES_COLUMN


def test_attribute_share_table_folds_small_categories(profiles: pl.DataFrame) -> None:
    full = attribute_share_table(profiles, "country")
    assert full["segment_id"].to_list() == [None, *profiles["segment_id"].to_list()]
    base = full.row(0, named=True)
    countries = full.columns[1:]
    assert len(countries) > 4
    assert [base[c] for c in countries] == sorted((base[c] for c in countries), reverse=True)
    folded = attribute_share_table(profiles, "country", max_categories=3)
    assert folded.columns == ["segment_id", *countries[:3], OTHER]
    np.testing.assert_allclose(folded.drop("segment_id").sum_horizontal(), 1.0, rtol=1e-12)
    assert folded[OTHER].to_list() == pytest.approx(
        full.select(countries[3:]).sum_horizontal().to_list()
    )
    assert attribute_share_table(profiles, "not_profiled").is_empty()


def test_names_unique_deterministic_and_sensible(
    profiles: pl.DataFrame, features: pl.DataFrame, labels: np.ndarray
) -> None:
    names = name_segments(profiles)
    assert set(names) == set(profiles["segment_id"].to_list())
    assert all(n.strip() for n in names.values())
    assert len(set(names.values())) == len(names)
    assert name_segments(profiles) == names
    # The generated personas' behaviours are recognised by at least a few of the rules.
    rule_names = {
        "High-value loyal",
        "At-risk big spenders",
        "Window shoppers",
        "Deal seekers",
        "New customers",
        "Dormant one-timers",
    }
    assert len(rule_names & set(names.values())) >= 4
    median_tenure = dict(zip(profiles["segment_id"], profiles["tenure_days_median"], strict=True))
    new = [s for s, n in names.items() if n.startswith("New")]
    assert new, names
    assert median_tenure[new[0]] == min(median_tenure.values())
    spend = dict(zip(profiles["segment_id"], profiles["lifetime_spend_mean"], strict=True))
    loyal = [s for s, n in names.items() if n.startswith("High-value")]
    if loyal:
        assert spend[loyal[0]] == max(spend.values())
    discount = dict(zip(profiles["segment_id"], profiles["discount_share_mean"], strict=True))
    deals = [s for s, n in names.items() if n.startswith("Deal")]
    if deals:
        assert discount[deals[0]] == max(discount.values())


def test_duplicate_names_get_suffixes(profiles: pl.DataFrame) -> None:
    doubled = pl.concat([profiles, profiles.with_columns(pl.col("segment_id") + 100)])
    names = name_segments(doubled)
    assert len(names) == 2 * profiles.height
    assert len(set(names.values())) == len(names)


def test_surrogate_rules(features: pl.DataFrame, labels: np.ndarray) -> None:
    result = surrogate_rules(features, labels, PROFILE_FEATURES, max_depth=3, seed=0)
    assert result.fidelity > 0.7
    rules = result.rules
    assert set(rules["segment_id"].to_list()) == set(np.unique(labels).tolist())
    assert rules["precision"].is_between(0, 1).all()
    by_segment = result.by_segment()
    for seg, seg_rules in by_segment.items():
        assert seg_rules
        for rule in seg_rules:
            assert rule["rule"]
            assert rule["rule"].count(" and ") <= 2  # depth 3: at most three conditions
            mask = apply_conditions(features, rule["conditions"])
            assert int(mask.sum()) == rule["support"]
            hits = int((labels[mask] == seg).sum())
            assert rule["precision"] == pytest.approx(hits / rule["support"])
            # Each feature appears in one merged condition only.
            feats = [c["feature"] for c in rule["conditions"]]
            assert len(feats) == len(set(feats))
            for feature in feats:
                assert feature in rule["rule"]
    # Rules of leaves predicting a segment partition those customers: leaves do not overlap.
    covered = np.zeros(features.height, dtype=int)
    for row in rules.filter(pl.col("predicts_segment")).iter_rows(named=True):
        covered += apply_conditions(features, row["conditions"])
    assert covered.max() <= 1


def test_rule_text_is_readable(features: pl.DataFrame, labels: np.ndarray) -> None:
    rules = surrogate_rules(features, labels, max_depth=3).rules
    number = r"-?\d+(?:\.\d+)?"
    cond = rf"(?:{number} < \w+ <= {number}|\w+ (?:<=|>=|>) {number})"
    for text in rules["rule"]:
        assert re.fullmatch(rf"{cond}(?: and {cond})*", text), text
        for value in re.findall(number, text):
            assert len(value.split(".")[-1]) <= 4 or "." not in value
    # Counts and days are whole numbers.
    for text in rules["rule"]:
        for m in re.finditer(rf"\b(?:tenure_days|count_\w+) (?:<=|>=) ({number})", text):
            assert "." not in m.group(1)


def test_surrogate_rules_are_deterministic(features: pl.DataFrame, labels: np.ndarray) -> None:
    a = surrogate_rules(features, labels, seed=3)
    b = surrogate_rules(features, labels, seed=3)
    assert a.rules.equals(b.rules)
    assert a.fidelity == b.fidelity
