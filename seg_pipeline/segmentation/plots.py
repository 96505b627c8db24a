"""Small PNG plots of a segmentation for the Dagster UI (headless matplotlib, Agg backend).

Every plot function returns PNG bytes of about 600 x 400 pixels (a few tens of KB), small
enough to inline as base64 in asset metadata with :func:`png_markdown`.  Figures only show
segment ids and names, feature names, metric names and numbers: never customer ids or personal
data.  Each public function draws with a private ``_*_figure`` builder that returns the
:class:`~matplotlib.figure.Figure`, so tests can read every text drawn.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import polars as pl
from matplotlib.figure import Figure

DPI = 80
SIZE = (7.5, 5.0)  # inches: 600 x 400 px at DPI


def to_png(fig: Figure) -> bytes:
    """The figure as PNG bytes at :data:`DPI`; the figure is closed."""
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=DPI)
    finally:
        plt.close(fig)
    return buf.getvalue()


def _segment_label(seg: int, names: Mapping[int, str]) -> str:
    name = names.get(int(seg))
    return f"{int(seg)}: {name}" if name else f"segment {int(seg)}"


def _colours(n: int) -> list:
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(n)]


def _projection_figure(
    X: np.ndarray,
    labels: np.ndarray,
    names: Mapping[int, str],
    seed: int,
    max_points: int = 5000,
) -> Figure:
    from sklearn.decomposition import PCA

    X = np.asarray(X, dtype=np.float64)
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    idx = np.arange(len(X))
    if len(idx) > max_points:
        idx = np.sort(rng.choice(idx, size=max_points, replace=False))
    xs, ls = X[idx], labels[idx]
    fig, ax = plt.subplots(figsize=SIZE, layout="constrained")
    if xs.shape[1] >= 2 and len(xs) >= 2:
        pca = PCA(n_components=2, random_state=seed).fit(xs)
        pts = pca.transform(xs)
        ratio = pca.explained_variance_ratio_
        ax.set_xlabel(f"PC1 ({ratio[0]:.0%} of variance)")
        ax.set_ylabel(f"PC2 ({ratio[1]:.0%} of variance)")
    else:
        pts = np.column_stack([xs[:, 0] if xs.shape[1] else np.zeros(len(xs)), np.zeros(len(xs))])
        ax.set_xlabel("feature 1")
    segs = sorted(np.unique(ls).tolist())
    for seg, colour in zip(segs, _colours(len(segs)), strict=True):
        m = ls == seg
        ax.scatter(
            pts[m, 0],
            pts[m, 1],
            s=6,
            alpha=0.6,
            color=colour,
            linewidths=0,
            label=_segment_label(seg, names),
        )
    ax.set_title(f"Segments in 2-D PCA projection ({len(idx):,} customers)")
    ax.legend(fontsize=8, markerscale=2.5, loc="best", framealpha=0.8)
    return fig


def projection_scatter(
    X: np.ndarray,
    labels: np.ndarray,
    names: Mapping[int, str],
    seed: int,
    max_points: int = 5000,
) -> bytes:
    """Scatter of the preprocessed matrix projected on its first two principal components.

    Parameters
    ----------
    X
        Preprocessed feature matrix (rows = customers).
    labels
        Segment id of each row.
    names
        Segment id to name (legend shows ``"id: name"``).
    seed
        Seed of the row sample and the PCA.
    max_points
        At most this many rows are drawn (a seeded sample).

    Returns
    -------
    bytes
        PNG image.
    """
    return to_png(_projection_figure(X, labels, names, seed, max_points))


def _dendrogram_figure(linkage: np.ndarray, truncate_p: int = 30) -> Figure:
    from scipy.cluster.hierarchy import dendrogram

    linkage = np.asarray(linkage, dtype=np.float64)
    n = linkage.shape[0] + 1

    def leaf_label(node: int) -> str:
        # Leaves of the truncated tree are merged clusters; show how many rows they hold.
        return f"({int(linkage[node - n, 3])})" if node >= n else "(1)"

    fig, ax = plt.subplots(figsize=SIZE, layout="constrained")
    dendrogram(
        linkage,
        truncate_mode="lastp",
        p=truncate_p,
        leaf_label_func=leaf_label,
        leaf_rotation=90,
        leaf_font_size=8,
        color_threshold=None,
        ax=ax,
    )
    ax.set_title(f"Hierarchy truncated to {min(truncate_p, n)} clusters (label = customers)")
    ax.set_ylabel("merge distance")
    return fig


def dendrogram_plot(linkage: np.ndarray, truncate_p: int = 30) -> bytes:
    """Dendrogram of a hierarchical clustering, truncated to its last ``truncate_p`` clusters.

    Parameters
    ----------
    linkage
        SciPy linkage matrix.
    truncate_p
        Leaves shown; each is labelled with the number of rows it holds, never a row id.

    Returns
    -------
    bytes
        PNG image.
    """
    return to_png(_dendrogram_figure(linkage, truncate_p))


def _profile_heatmap_figure(
    profiles: pl.DataFrame,
    features: Sequence[str],
    names: Mapping[int, str] | None = None,
) -> Figure:
    feats = [f for f in features if f"{f}_std_diff" in profiles.columns]
    segs = profiles["segment_id"].to_list()
    if names is None and "segment_name" in profiles.columns:
        names = dict(zip(segs, profiles["segment_name"].to_list(), strict=True))
    names = names or {}
    values = (
        profiles.select([pl.col(f"{f}_std_diff").cast(pl.Float64) for f in feats])
        .to_numpy()
        .astype(np.float64)
        if feats
        else np.zeros((len(segs), 0))
    )
    finite = values[np.isfinite(values)]
    vmax = max(1.0, float(np.abs(finite).max())) if finite.size else 1.0
    width = max(SIZE[0], 2.5 + 0.6 * len(feats))
    fig, ax = plt.subplots(figsize=(width, max(SIZE[1], 1.5 + 0.45 * len(segs))))
    image = ax.imshow(
        np.ma.masked_invalid(values), cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect="auto"
    )
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            v = values[i, j]
            if np.isfinite(v):
                ax.text(
                    j,
                    i,
                    f"{v:+.1f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if abs(v) > 0.6 * vmax else "black",
                )
    ax.set_xticks(range(len(feats)), feats, rotation=40, ha="right", fontsize=8)
    ax.set_yticks(range(len(segs)), [_segment_label(s, names) for s in segs], fontsize=8)
    ax.set_title("Segment mean vs all customers (standard deviations)")
    fig.colorbar(image, ax=ax, shrink=0.8, label="standardised difference")
    fig.tight_layout()
    return fig


def profile_heatmap(
    profiles: pl.DataFrame,
    features: Sequence[str],
    names: Mapping[int, str] | None = None,
) -> bytes:
    """Heatmap of segments x features coloured by standardised difference from the base.

    Parameters
    ----------
    profiles
        Output of :func:`seg_pipeline.segmentation.profiles.segment_profiles` (uses the
        ``<feature>_std_diff`` columns, and ``segment_name`` if present).
    features
        Features to show, in order (those without a ``_std_diff`` column are skipped).
    names
        Segment id to name for the row labels (default: the ``segment_name`` column, else ids).

    Returns
    -------
    bytes
        PNG image (diverging colours centred on 0, cells annotated with the value).
    """
    return to_png(_profile_heatmap_figure(profiles, features, names))


# Known categories per attribute drawn by attribute_shares_plot (the rest are "other").
SHARE_PLOT_CATEGORIES = 6


def _attribute_shares_figure(
    profiles: pl.DataFrame,
    attributes: Sequence[str],
    names: Mapping[int, str] | None = None,
    max_categories: int = SHARE_PLOT_CATEGORIES,
) -> Figure:
    from seg_pipeline.segmentation.profiles import attribute_share_table

    segs = profiles["segment_id"].to_list()
    if names is None and "segment_name" in profiles.columns:
        names = dict(zip(segs, profiles["segment_name"].to_list(), strict=True))
    names = names or {}
    tables = {a: attribute_share_table(profiles, a, max_categories) for a in attributes}
    tables = {a: t for a, t in tables.items() if t.height > 0}
    widths = [max(2, t.width - 1) for t in tables.values()] or [1]
    n_rows = 1 + len(segs)
    fig, axes = plt.subplots(
        1,
        len(widths),
        figsize=(11.0, min(6.25, max(SIZE[1], 1.8 + 0.32 * n_rows))),
        squeeze=False,
        gridspec_kw={"width_ratios": widths},
        layout="constrained",
    )
    row_labels = ["all customers", *(_segment_label(s, names) for s in segs)]
    diffs = {}
    for attribute, table in tables.items():
        shares = table.drop("segment_id").to_numpy().astype(np.float64)
        diffs[attribute] = (shares, 100 * (shares - shares[0]))
    finite = [np.abs(d[np.isfinite(d)]).max() for _, d in diffs.values() if np.isfinite(d).any()]
    vmax = max(5.0, *finite) if finite else 5.0
    image = None
    for i, (ax, (attribute, table)) in enumerate(zip(axes.flat, tables.items(), strict=False)):
        shares, diff = diffs[attribute]
        image = ax.imshow(diff, cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect="auto")
        for r in range(shares.shape[0]):
            for c in range(shares.shape[1]):
                ax.text(
                    c,
                    r,
                    f"{100 * shares[r, c]:.0f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if abs(diff[r, c]) > 0.6 * vmax else "black",
                )
        ax.axhline(0.5, color="black", lw=0.8)
        categories = table.columns[1:]
        ax.set_xticks(range(len(categories)), categories, rotation=40, ha="right", fontsize=7)
        ax.set_yticks(range(n_rows), row_labels if i == 0 else [], fontsize=7)
        ax.set_title(attribute, fontsize=9)
    if not tables:
        axes.flat[0].text(0.5, 0.5, "no attributes", ha="center", va="center")
        axes.flat[0].set_axis_off()
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.8, label="segment share - base share (points)")
    fig.suptitle("Share of each category in % per segment vs all customers", fontsize=10)
    return fig


def attribute_shares_plot(
    profiles: pl.DataFrame,
    attributes: Sequence[str],
    names: Mapping[int, str] | None = None,
    max_categories: int = SHARE_PLOT_CATEGORIES,
) -> bytes:
    """Heatmaps, one per attribute, of the share of each category per segment vs the base.

    Parameters
    ----------
    profiles
        Output of :func:`seg_pipeline.segmentation.profiles.segment_profiles` (uses its
        ``attribute_shares`` column, and ``segment_name`` if present).
    attributes
        Attributes to show, in order (those not profiled are skipped), e.g. age band, gender,
        country.
    names
        Segment id to name for the row labels (default: the ``segment_name`` column, else ids).
    max_categories
        Known categories drawn per attribute, the largest in the base; the others are added
        up as "other".

    Returns
    -------
    bytes
        PNG image: rows are all customers, then each segment; cells show the share in % and
        are coloured by the difference from the base share in percentage points (diverging
        colours centred on 0). Only category labels and shares are drawn.
    """
    return to_png(_attribute_shares_figure(profiles, attributes, names, max_categories))


# Metric, title, whether higher is better.
_K_METRICS: tuple[tuple[str, str, bool], ...] = (
    ("silhouette", "silhouette (higher better)", True),
    ("calinski_harabasz", "Calinski-Harabasz (higher better)", True),
    ("davies_bouldin", "Davies-Bouldin (lower better)", False),
    ("bic", "BIC (lower better)", False),
    ("inertia", "inertia (elbow)", False),
)


def _k_selection_figure(k_scores: pl.DataFrame) -> Figure:
    scores = k_scores.sort("k")
    metrics = [
        (col, title)
        for col, title, _ in _K_METRICS
        if col in scores.columns and scores[col].cast(pl.Float64).drop_nulls().len() > 0
    ]
    chosen = (
        scores.filter(pl.col("chosen").fill_null(False))["k"].to_list()
        if "chosen" in scores.columns
        else []
    )
    n = max(1, len(metrics))
    cols = min(n, 3)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=SIZE, layout="constrained", squeeze=False)
    ks = scores["k"].to_numpy()
    for ax, (col, title) in zip(axes.flat, metrics, strict=False):
        ys = scores[col].cast(pl.Float64).to_numpy()
        ok = np.isfinite(ys)
        ax.plot(ks[ok], ys[ok], marker="o", ms=3, color="tab:blue")
        for k in chosen:
            ax.axvline(k, color="tab:red", ls="--", lw=1)
            hit = ok & (ks == k)
            ax.plot(ks[hit], ys[hit], marker="*", ms=12, color="tab:red", ls="none")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("k", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.xaxis.get_major_locator().set_params(integer=True)
    for ax in list(axes.flat)[len(metrics) :]:
        ax.set_axis_off()
    if not metrics:
        axes.flat[0].text(0.5, 0.5, "no scores", ha="center", va="center")
    chosen_text = ", ".join(str(k) for k in chosen) or "none"
    fig.suptitle(f"Choice of the number of segments (chosen k = {chosen_text})", fontsize=10)
    return fig


def k_selection_plot(k_scores: pl.DataFrame) -> bytes:
    """Small multiples of the scores of each candidate number of segments.

    Parameters
    ----------
    k_scores
        Columns ``k``, ``silhouette``, ``calinski_harabasz``, ``davies_bouldin``, ``bic``,
        ``inertia`` (any may be missing or all null: that panel is left out) and ``chosen``
        (bool; the chosen k is marked with a dashed line and a star).

    Returns
    -------
    bytes
        PNG image.
    """
    return to_png(_k_selection_figure(k_scores))


def _segment_sizes_figure(sizes: pl.DataFrame) -> Figure:
    data = sizes.with_columns(pl.col("segment_id").cast(pl.Int64)).sort("as_of_date", "segment_id")
    # Latest name of each segment id for the legend.
    latest = (
        data.group_by("segment_id")
        .agg(pl.col("segment_name").sort_by("as_of_date").last())
        .sort("segment_id")
    )
    names = dict(zip(latest["segment_id"].to_list(), latest["segment_name"].to_list(), strict=True))
    wide = (
        data.pivot(
            on="segment_id", index="as_of_date", values="n_customers", aggregate_function="sum"
        )
        .sort("as_of_date")
        .fill_null(0)
    )
    segs = sorted(names)
    dates = wide["as_of_date"].to_list()
    ys = np.array([wide[str(s)].cast(pl.Float64).to_numpy() for s in segs]).reshape(
        len(segs), len(dates)
    )
    labels = [_segment_label(s, names) for s in segs]
    colours = _colours(len(segs))
    fig, ax = plt.subplots(figsize=SIZE, layout="constrained")
    if len(dates) >= 2:
        ax.stackplot(dates, ys, labels=labels, colors=colours, alpha=0.85)
        locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    elif dates:
        bottom = 0.0
        for y, label, colour in zip(ys[:, 0], labels, colours, strict=True):
            ax.bar([str(dates[0])], [y], bottom=bottom, label=label, color=colour)
            bottom += y
    ax.set_ylabel("customers")
    ax.set_title("Segment sizes over time")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def segment_sizes_plot(sizes: pl.DataFrame) -> bytes:
    """Stacked area of segment sizes over time.

    Parameters
    ----------
    sizes
        Columns ``as_of_date`` (date), ``segment_id``, ``segment_name``, ``n_customers``; the
        legend uses each segment's latest name.  A single day is drawn as a stacked bar.

    Returns
    -------
    bytes
        PNG image.
    """
    return to_png(_segment_sizes_figure(sizes))


def png_markdown(png: bytes, alt: str) -> str:
    """Markdown image with the PNG inlined as a base64 data URI (for ``MetadataValue.md``)."""
    alt = alt.replace("[", "(").replace("]", ")").replace("\n", " ")
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"


def write_png(png: bytes, path: Path) -> Path:
    """Write ``png`` to ``path`` (parent directories created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    return path
