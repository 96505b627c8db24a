"""What the uplift tables hold, as plain functions (connection and day in, frame out), and
the metadata of their runs.

- ``uplift_models``: per day, the uplift model in force; on a refit day (and every day
  until there is one) the challenger
  trained that day (:func:`~seg_pipeline.activation.uplift.train_uplift_challenger`), its
  Qini coefficient beside the champion's on the challenger's validation sends, and whether it
  was promoted (a higher Qini);
- ``uplift_scores``: per day and customer, the uplift of a send on each channel by the
  model in force (none before a first model): what ``rank_by: uplift`` in the playbook ranks.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import duckdb
import numpy as np
import polars as pl
from dagster import MetadataValue, get_dagster_logger

from seg_pipeline.activation.uplift import (
    NotEnoughSends,
    UpliftConfig,
    UpliftModel,
    train_uplift_challenger,
    uplift_figures,
)
from seg_pipeline.features.reviews import refit_day
from seg_pipeline.metadata import markdown_table
from seg_pipeline.models.store import ModelStore, fingerprint
from seg_pipeline.predictive.config import CHANNELS
from seg_pipeline.predictive.training import register_model_inputs
from seg_pipeline.resources import query_frame, read_sql, table_exists

UPLIFT_MODELS_SCHEMA = {
    "as_of_date": pl.Date,
    "champion_version": pl.String,
    "challenger_version": pl.String,
    "promoted": pl.Boolean,
    "decision": pl.String,
    "validation_cutoff": pl.Date,
    "challenger_qini": pl.Float64,
    "champion_qini": pl.Float64,
}
UPLIFT_SCORES_SCHEMA = {
    "as_of_date": pl.Date,
    "customer_id": pl.String,
    **{f"uplift_{channel}": pl.Float64 for channel in CHANNELS},
    "uplift_model_version": pl.String,
}


def _champion_before(conn: duckdb.DuckDBPyConnection, day: date) -> str | None:
    if not table_exists(conn, "uplift_models"):
        return None
    frame = query_frame(conn, read_sql("activation/uplift_champion_before"), {"as_of_date": day})
    return frame["champion_version"][0] if frame.height else None


def _train_or_find(
    conn: duckdb.DuckDBPyConnection,
    day: date,
    settings: UpliftConfig,
    models: ModelStore,
    champion: str | None,
) -> dict[str, Any]:
    """The refit day's challenger: found in the store (a re-run) or trained, judged against
    ``champion`` and saved. Returns the decision fields of the day's row."""
    version = f"{day:%Y%m%d}-uplift-{fingerprint(settings.model_dump())}"
    found = models.version(conn, version)
    if found is None:
        try:
            challenger = train_uplift_challenger(conn, day, settings)
        except NotEnoughSends as why:
            get_dagster_logger().info(f"uplift {day}: no challenger: {why}")
            return {"decision": f"no challenger: {why}"}
        new = challenger.figures[challenger.model.approach]["qini"]
        old = None
        current = models.load(conn, champion, UpliftModel) if champion else None
        if current is None:
            promoted, reason = True, f"no champion yet; challenger Qini {new:.5f}"
        elif current.window_days != settings.window_days:
            promoted, reason = (
                True,
                (
                    f"the champion learnt a {current.window_days}-day outcome, the settings ask "
                    f"for {settings.window_days}; challenger Qini {new:.5f}"
                ),
            )
        else:
            valid = challenger.valid
            old = uplift_figures(
                valid["_converted"].to_numpy(),
                valid["_treated"].to_numpy(),
                current.predict(valid),
            )["qini"]
            promoted = new > old
            cut = challenger.plan.validation_cutoff
            reason = (
                f"challenger Qini {new:.5f} {'>' if promoted else '<='} champion {old:.5f} "
                f"on the sends after {cut}"
            )
        found = models.save(
            conn,
            challenger.model,
            version,
            training_end=day,
            training_start=min(challenger.plan.training_cutoffs),
            params=settings.model_dump(),
            metrics=challenger.figures[challenger.model.approach],
            details={
                "approach": challenger.model.approach,
                "validation_cutoff": challenger.plan.validation_cutoff.isoformat(),
                "training_cutoffs": [c.isoformat() for c in challenger.plan.training_cutoffs],
                "train_rows": challenger.train_rows,
                "validation_rows": challenger.valid.height,
                "figures": challenger.figures,
                "champion_before": champion,
                "champion_qini": old,
                "promoted": promoted,
                "decision": reason,
            },
        )
        get_dagster_logger().info(f"uplift {day}: challenger {version}: {reason}")
    details = found.details
    return {
        "challenger_version": version,
        "promoted": details["promoted"],
        "decision": details["decision"],
        "validation_cutoff": date.fromisoformat(details["validation_cutoff"]),
        "challenger_qini": found.metrics["qini"],
        "champion_qini": details["champion_qini"],
    }


def uplift_models_of_day(
    conn: duckdb.DuckDBPyConnection, day: date, settings: UpliftConfig | None, models: ModelStore
) -> pl.DataFrame:
    """The ``uplift_models`` row of ``day``: the champion of the day before, replaced by the
    day's challenger if its Qini is higher (refit days; and any day without a model, or whose
    model learnt another outcome window than the settings ask for: a new deployment or a
    changed setting need not wait for a Monday, and is promoted whatever its Qini)."""
    settings = settings or UpliftConfig()
    champion = _champion_before(conn, day)
    row: dict[str, Any] = {"as_of_date": day, "promoted": False, "decision": "not a refit day"}
    if (
        champion is None
        or refit_day(day, settings.refit_every_days) == day
        or models.load(conn, champion, UpliftModel).window_days != settings.window_days
    ):
        row.update(_train_or_find(conn, day, settings, models, champion))
        if row["promoted"]:
            champion = row["challenger_version"]
    row["champion_version"] = champion
    return pl.DataFrame([row], schema=UPLIFT_MODELS_SCHEMA)


def uplift_scores_of_day(
    conn: duckdb.DuckDBPyConnection, day: date, settings: Any, models: ModelStore
) -> pl.DataFrame:
    """``uplift_scores`` rows of ``day``: every customer of the day's model inputs scored on
    each channel by the day's uplift model (no rows without one)."""
    version = query_frame(conn, read_sql("activation/uplift_model_of_day"), {"as_of_date": day})
    if version.is_empty() or version["champion_version"][0] is None:
        return pl.DataFrame(schema=UPLIFT_SCORES_SCHEMA)
    model = models.load(conn, version["champion_version"][0], UpliftModel)
    register_model_inputs(conn)
    rows = query_frame(conn, read_sql("predictive/scoring_rows"), {"as_of_date": day})
    uplift = model.predict_channels(rows)
    return pl.DataFrame(
        {
            "as_of_date": rows["as_of_date"],
            "customer_id": rows["customer_id"],
            **{f"uplift_{c}": uplift[:, k] for k, c in enumerate(CHANNELS)},
            "uplift_model_version": [version["champion_version"][0]] * rows.height,
        },
        schema=UPLIFT_SCORES_SCHEMA,
    )


def summarize_uplift_models(
    conn: duckdb.DuckDBPyConnection, last: pl.DataFrame | None, models: ModelStore
) -> dict[str, Any]:
    """Metadata: the champion of the run's last day and, on its validation sends, the Qini
    coefficient, AUUC and uplift among the top 30% of every approach and baseline ranking."""
    if last is None or last.is_empty():
        return {}
    row = last.row(0, named=True)
    meta: dict[str, Any] = {
        "champion": row["champion_version"] or "none",
        "decision": row["decision"],
    }
    if row["champion_version"] is None:
        return meta
    found = models.version(conn, row["champion_version"])
    assert found is not None
    details = found.details
    header = (
        "ranking",
        "Qini (per 1,000)",
        "AUUC (per 1,000)",
        "extra conversions per 1,000 sends, top 30%",
    )
    table = [
        (
            name,
            *(
                None if np.isnan(f[k]) else round(1000 * f[k], 2)
                for k in ("qini", "auuc", "uplift_top")
            ),
        )
        for name, f in details["figures"].items()
    ]
    average = details["figures"][details["approach"]]["average_effect"]
    meta["validation"] = MetadataValue.md(
        f"Champion approach {details['approach']}; sends after the validation cut-off "
        f"{details['validation_cutoff']} ({details['validation_rows']} rows, average effect "
        f"of a send {1000 * average:.2f} conversions per 1,000); trained on "
        f"{details['train_rows']} sends of {len(details['training_cutoffs'])} cut-offs.\n\n"
        + markdown_table(header, table)
    )
    meta["qini"] = found.metrics["qini"]
    return meta
