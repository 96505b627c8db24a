"""PNG plots of a predictive model for the Dagster UI: its calibration curve and permutation
importance on the validation cut-off. Same size and style as the segmentation's plots; they
show feature names and numbers only, never a customer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from matplotlib.figure import Figure

from seg_pipeline.segmentation.plots import DPI, SIZE, to_png


def _calibration_figure(target: str, curve: Mapping[str, Sequence[float]]) -> Figure:
    fig = Figure(figsize=SIZE, dpi=DPI)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    ax.plot(curve["predicted"], curve["observed"], marker="o", label="model (deciles)")
    ax.set_xlabel("predicted probability")
    ax.set_ylabel("observed rate")
    ax.set_title(f"{target}: calibration on the validation cut-off")
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def calibration_plot(target: str, curve: Mapping[str, Sequence[float]]) -> bytes:
    """Observed rate against mean predicted probability per decile of predictions."""
    return to_png(_calibration_figure(target, curve))


def _importance_figure(target: str, importance: Mapping[str, float]) -> Figure:
    fig = Figure(figsize=SIZE, dpi=DPI)
    ax = fig.add_subplot()
    names = list(importance)[::-1]
    ax.barh(names, [importance[n] for n in names])
    ax.set_xlabel("drop in ROC AUC when the feature is shuffled")
    ax.set_title(f"{target}: permutation importance (validation cut-off)")
    ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    return fig


def importance_plot(target: str, importance: Mapping[str, float]) -> bytes:
    """The features whose shuffling costs the most ROC AUC, largest at the top."""
    return to_png(_importance_figure(target, importance))
