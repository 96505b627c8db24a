"""The drift plot: PSI per feature as bars, with the threshold line (headless matplotlib).

Like the segmentation plots it shows only feature names, numbers and a model version: never a
customer.
"""

from __future__ import annotations

import polars as pl
from matplotlib.figure import Figure

from seg_pipeline.segmentation.plots import SIZE, to_png


def _psi_bar_figure(rows: pl.DataFrame, threshold: float, title: str) -> Figure:
    import matplotlib.pyplot as plt

    shown = rows.sort("psi", descending=True)
    fig, ax = plt.subplots(figsize=SIZE, layout="constrained")
    colours = ["tab:red" if d else "tab:blue" for d in shown["drifted"]]
    ax.barh(shown["feature"].to_list(), shown["psi"].to_list(), color=colours)
    ax.invert_yaxis()
    ax.axvline(threshold, color="tab:red", ls="--", lw=1, label=f"threshold {threshold:g}")
    ax.set_xlabel("population stability index (PSI)")
    ax.legend(loc="lower right", fontsize=8)
    ax.tick_params(labelsize=8)
    ax.set_title(title, fontsize=9)
    return fig


def psi_bar_plot(rows: pl.DataFrame, threshold: float, title: str) -> bytes:
    """PNG bytes of the PSI of each row (columns feature, psi, drifted), drifted ones red,
    with a dashed line at ``threshold``."""
    return to_png(_psi_bar_figure(rows, threshold, title))
