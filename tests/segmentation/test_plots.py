"""The segmentation plots: small valid PNGs that draw only segment and feature names, on a small
generated frame of customer features (see ``persona_features``)."""

from __future__ import annotations

import base64
import io
import re
from datetime import date, timedelta
from pathlib import Path

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import polars as pl
import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text
from scipy.cluster.hierarchy import linkage as scipy_linkage
from sklearn.cluster import KMeans

from seg_pipeline.segmentation import plots
from seg_pipeline.segmentation.profiles import (
    PROFILE_ATTRIBUTES,
    PROFILE_FEATURES,
    attribute_shares_of,
    name_segments,
    segment_profiles,
)
from tests.segmentation.persona_features import persona_features, persona_matrix

MAX_BYTES = 150_000


@pytest.fixture(scope="module")
def features() -> pl.DataFrame:
    """customer_features of the generated customers on the last day, sorted by id."""
    return persona_features().features


@pytest.fixture(scope="module")
def matrix() -> np.ndarray:
    """``features`` preprocessed with the default configuration."""
    return persona_matrix()


@pytest.fixture(scope="module")
def labels(matrix: np.ndarray) -> np.ndarray:
    return KMeans(6, n_init=10, random_state=0).fit_predict(matrix)


@pytest.fixture(scope="module")
def profiles(features: pl.DataFrame, labels: np.ndarray) -> pl.DataFrame:
    segs = pl.DataFrame({"customer_id": features["customer_id"], "segment_id": labels})
    return segment_profiles(features, segs)


@pytest.fixture(scope="module")
def names(profiles: pl.DataFrame) -> dict[int, str]:
    return name_segments(profiles)


@pytest.fixture(scope="module")
def k_scores() -> pl.DataFrame:
    ks = list(range(3, 11))
    return pl.DataFrame(
        {
            "k": ks,
            "silhouette": np.linspace(0.2, 0.3, len(ks)),
            "calinski_harabasz": np.linspace(300, 200, len(ks)),
            "davies_bouldin": np.linspace(1.2, 1.0, len(ks)),
            "bic": [None] * len(ks),
            "inertia": np.linspace(5000, 2000, len(ks)),
            "chosen": [k == 6 for k in ks],
        },
        schema_overrides={"bic": pl.Float64},
    )


@pytest.fixture(scope="module")
def sizes(names: dict[int, str], labels: np.ndarray) -> pl.DataFrame:
    rows = [
        (date(2026, 1, 1) + timedelta(days=d), seg, name, int((labels == seg).sum()) + d * seg)
        for d in range(5)
        for seg, name in names.items()
    ]
    return pl.DataFrame(
        rows, schema=["as_of_date", "segment_id", "segment_name", "n_customers"], orient="row"
    )


def _check_png(png: bytes) -> np.ndarray:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) < MAX_BYTES
    image = mpimg.imread(io.BytesIO(png), format="png")
    h, w = image.shape[:2]
    assert 300 <= h <= 500 and 450 <= w <= 900, (w, h)
    return image


def _texts(fig: Figure) -> list[str]:
    texts = [t.get_text() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    plt.close(fig)
    return texts


def _assert_only_allowed(texts: list[str], allowed_words: set[str], ids: set[str]) -> None:
    for text in texts:
        assert not any(i in text for i in ids), text
        for word in re.findall(r"[A-Za-z_][A-Za-z0-9_\-]*", text):
            assert word.lower() in allowed_words, (word, text)


GENERIC = {
    "segments", "segment", "in", "d", "pca", "projection", "customers", "customer", "pc1",
    "pc2", "of", "variance", "hierarchy", "truncated", "to", "clusters", "label", "merge",
    "distance",
    "mean", "vs", "all", "standard", "deviations", "standardised", "difference", "silhouette",
    "higher", "better", "lower", "calinski-harabasz", "davies-bouldin", "bic", "inertia",
    "elbow", "k", "choice", "the", "number", "chosen", "sizes", "over", "time", "jan", "feb",
    "e",
}  # fmt: skip


@pytest.fixture(scope="module")
def allowed(names: dict[int, str]) -> set[str]:
    words = set(GENERIC) | {f.lower() for f in PROFILE_FEATURES}
    for name in names.values():
        words |= {w.lower() for w in re.findall(r"[A-Za-z_][A-Za-z0-9_\-]*", name)}
    return words


@pytest.fixture(scope="module")
def customer_ids(features: pl.DataFrame) -> set[str]:
    return set(features["customer_id"].cast(pl.String).to_list())


def test_projection_scatter(
    matrix: np.ndarray,
    labels: np.ndarray,
    names: dict[int, str],
    allowed: set[str],
    customer_ids: set[str],
) -> None:
    png = plots.projection_scatter(matrix, labels, names, seed=0, max_points=500)
    _check_png(png)
    assert png == plots.projection_scatter(matrix, labels, names, seed=0, max_points=500)
    fig = plots._projection_figure(matrix, labels, names, 0, 500)
    texts = _texts(fig)
    assert all(any(n in t for t in texts) for n in names.values())
    assert any("500 customers" in t for t in texts)
    _assert_only_allowed(texts, allowed, customer_ids)


def test_dendrogram(matrix: np.ndarray, allowed: set[str], customer_ids: set[str]) -> None:
    link = scipy_linkage(matrix[:400], method="ward")
    _check_png(plots.dendrogram_plot(link, truncate_p=20))
    texts = _texts(plots._dendrogram_figure(link, truncate_p=20))
    leaves = [t for t in texts if t.startswith("(")]
    assert len(leaves) == 20
    assert sum(int(t.strip("()")) for t in leaves) == 400
    _assert_only_allowed(texts, allowed, customer_ids)


def test_profile_heatmap(
    profiles: pl.DataFrame, names: dict[int, str], allowed: set[str], customer_ids: set[str]
) -> None:
    _check_png(plots.profile_heatmap(profiles, PROFILE_FEATURES, names))
    texts = _texts(plots._profile_heatmap_figure(profiles, PROFILE_FEATURES, names))
    assert all(any(n in t for t in texts) for n in names.values())
    assert all(f in texts for f in PROFILE_FEATURES)
    _assert_only_allowed(texts, allowed, customer_ids)
    # The segment_name column is used when no names are passed.
    named = profiles.with_columns(
        pl.col("segment_id").replace_strict(names, return_dtype=pl.String).alias("segment_name")
    )
    texts = _texts(plots._profile_heatmap_figure(named, PROFILE_FEATURES))
    assert all(any(n in t for t in texts) for n in names.values())


def test_attribute_shares_plot(
    profiles: pl.DataFrame, names: dict[int, str], allowed: set[str], customer_ids: set[str]
) -> None:
    _check_png(plots.attribute_shares_plot(profiles, PROFILE_ATTRIBUTES, names))
    fig = plots._attribute_shares_figure(profiles, PROFILE_ATTRIBUTES, names, max_categories=4)
    texts = _texts(fig)
    assert all(any(n in t for t in texts) for n in names.values())
    assert all(a in texts for a in PROFILE_ATTRIBUTES) and "all customers" in texts
    assert "other" in texts  # more than 4 countries
    categories = {c.lower() for c in attribute_shares_of(profiles)["category"]}
    words = {"share", "each", "category", "per", "base", "points", "other", *PROFILE_ATTRIBUTES}
    _assert_only_allowed(texts, allowed | categories | words, customer_ids)
    # every cell (all customers and each segment, per category) is annotated with its share
    cells = [t for t in texts if re.fullmatch(r"\d+", t)]
    assert len(cells) >= (1 + profiles.height) * len(PROFILE_ATTRIBUTES) * 2
    # profiles without shares (e.g. written before they existed) still draw
    _check_png(plots.attribute_shares_plot(profiles.drop("attribute_shares"), PROFILE_ATTRIBUTES))


def test_k_selection_plot(
    k_scores: pl.DataFrame, allowed: set[str], customer_ids: set[str]
) -> None:
    _check_png(plots.k_selection_plot(k_scores))
    texts = _texts(plots._k_selection_figure(k_scores))
    assert any("chosen k = 6" in t for t in texts)
    assert not any("BIC" in t for t in texts)  # all-null metric left out
    _assert_only_allowed(texts, allowed, customer_ids)
    no_inertia = k_scores.with_columns(pl.lit(None, dtype=pl.Float64).alias("inertia"))
    _check_png(plots.k_selection_plot(no_inertia))


def test_segment_sizes_plot(
    sizes: pl.DataFrame, names: dict[int, str], allowed: set[str], customer_ids: set[str]
) -> None:
    _check_png(plots.segment_sizes_plot(sizes))
    texts = _texts(plots._segment_sizes_figure(sizes))
    assert all(any(n in t for t in texts) for n in names.values())
    _assert_only_allowed(texts, allowed, customer_ids)
    one_day = sizes.filter(pl.col("as_of_date") == date(2026, 1, 1))
    _check_png(plots.segment_sizes_plot(one_day))


def test_png_markdown_and_write(tmp_path: Path) -> None:
    png = plots.k_selection_plot(
        pl.DataFrame({"k": [2, 3], "silhouette": [0.1, 0.2], "chosen": [False, True]})
    )
    md = plots.png_markdown(png, "k [selection]")
    match = re.fullmatch(r"!\[([^\]]*)\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", md)
    assert match
    assert match.group(1) == "k (selection)"
    assert base64.b64decode(match.group(2)) == png
    path = plots.write_png(png, tmp_path / "a" / "b" / "k.png")
    assert path.read_bytes() == png
