"""PNG plot of measured campaign lift for the Dagster UI: per playbook campaign, the absolute
lift of each send day with its 95% interval. Sends whose holdout was too small for a
conclusion are not drawn as a number; the legend counts them."""

from __future__ import annotations

import polars as pl
from matplotlib.figure import Figure

from seg_pipeline.activation.lift import TOO_SMALL
from seg_pipeline.segmentation.plots import DPI, SIZE, to_png


def _lift_figure(lift: pl.DataFrame) -> Figure:
    fig = Figure(figsize=SIZE, dpi=DPI)
    ax = fig.add_subplot()
    sends = lift.filter(pl.col("scope") == "send_day")
    for (campaign,), rows in sends.group_by(["playbook_campaign"], maintain_order=True):
        shown = rows.filter(pl.col("conclusion") != TOO_SMALL).sort("send_date")
        hidden = rows.height - shown.height
        label = f"{campaign}" + (f" ({hidden} sends: holdout too small)" if hidden else "")
        if shown.is_empty():
            ax.plot([], [], label=label)
            continue
        lift_pp = shown["absolute_lift"] * 100
        ax.errorbar(
            shown["send_date"].to_list(),
            lift_pp.to_list(),
            yerr=[
                (lift_pp - shown["absolute_lift_low"] * 100).to_list(),
                (shown["absolute_lift_high"] * 100 - lift_pp).to_list(),
            ],
            marker="o",
            capsize=3,
            label=label,
        )
    ax.axhline(0, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("send day")
    ax.set_ylabel("conversion rate lift, treated - holdout (points)")
    ax.set_title("Measured campaign lift with 95% intervals")
    ax.legend(loc="best", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def lift_plot(lift: pl.DataFrame) -> bytes:
    """Absolute lift per send day and campaign, with 95% intervals."""
    return to_png(_lift_figure(lift))
