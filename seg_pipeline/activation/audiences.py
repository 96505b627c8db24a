"""Who each playbook campaign selects on a day, and who of them is held out.

For the day D the playbook runs on (scores of D, sent on D + 1), a campaign selects the
customers with marketing consent, not suppressed, in one of its segments and meeting all its
conditions, not selected by the same campaign within its cool-down, and under the frequency
cap (messages of any campaign in the cap's days up to the send day, this day's earlier
playbook campaigns included: campaigns are served in playbook order). With ``rank_by`` and
``max_audience`` it keeps the top N by that score. Each selected customer is then treated or
held out by a hash of (playbook seed, campaign, customer): the same customer is always in the
same group of a campaign, so a re-run gives the same split and a holdout stays unexposed.
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Callable, Mapping
from datetime import date, timedelta
from typing import Any

import duckdb
import polars as pl

from seg_pipeline.activation.playbook import Campaign, Playbook
from seg_pipeline.resources import query_frame, read_sql

AUDIENCE_SCHEMA = {
    "as_of_date": pl.Date,
    "send_date": pl.Date,
    "playbook_campaign": pl.String,
    "campaign_id": pl.String,
    "customer_id": pl.String,
    "channel": pl.String,
    "is_holdout": pl.Boolean,
    "segment_id": pl.Int64,
    "segment_name": pl.String,
    "rank_score": pl.Float64,
    "measurement_window_days": pl.Int32,
    "playbook_version": pl.String,
}
_OPS: Mapping[str, Callable[[pl.Expr, float], pl.Expr]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "=": operator.eq,
    "!=": operator.ne,
}


def campaign_instance_id(campaign: Campaign, send_date: date) -> str:
    """The id one day's send of a playbook campaign carries in exports and send logs."""
    return f"{campaign.id}-{send_date:%Y%m%d}"


def holdout_draw(seed: int, campaign_id: str, customer_ids: pl.Series) -> pl.Series:
    """A uniform number in [0, 1) per customer, fixed for (seed, campaign, customer): SHA-256,
    so the split does not depend on the engine, its version or the row order."""
    prefix = f"{seed}:{campaign_id}:".encode()
    values = [
        int.from_bytes(hashlib.sha256(prefix + cid.encode()).digest()[:8], "big") / 2**64
        for cid in customer_ids.to_list()
    ]
    return pl.Series("holdout_draw", values, dtype=pl.Float64)


def select_campaign(candidates: pl.DataFrame, campaign: Campaign) -> pl.DataFrame:
    """The candidates that meet the campaign's segments and conditions (and its top N), with
    ``rank_score``; caps and cool-downs are applied by :func:`audience_rows`."""
    selected = candidates
    if campaign.segments:
        selected = selected.filter(pl.col("segment_name").is_in(list(campaign.segments)))
    for condition in campaign.conditions:
        column = pl.col(campaign.score_column(condition.field))
        selected = selected.filter(_OPS[condition.op](column, condition.value).fill_null(False))
    if campaign.rank_by is not None:
        score = pl.col(campaign.score_column(campaign.rank_by))
        selected = selected.filter(score.is_not_null()).with_columns(score.alias("rank_score"))
        selected = selected.sort(["rank_score", "customer_id"], descending=[True, False])
        selected = selected.head(campaign.max_audience or selected.height)
    else:
        selected = selected.with_columns(pl.lit(None, dtype=pl.Float64).alias("rank_score"))
    return selected


def audience_rows(
    candidates: pl.DataFrame,
    contacts: pl.DataFrame,
    selections: pl.DataFrame,
    playbook: Playbook,
    day: date,
) -> pl.DataFrame:
    """Every campaign's audience of ``day`` (frame in, frame out).

    ``candidates``: the day's consented, unsuppressed customers with their scores and segment
    (sql/activation/audience_candidates.sql); ``contacts``: (customer_id, campaign_id,
    send_date) of messages already sent or due; ``selections``: (playbook_campaign,
    customer_id, last_send_date) of earlier selections.
    """
    send_date = day + timedelta(days=1)
    contacts = contacts.select("customer_id", "send_date")
    parts = []
    for campaign in playbook.campaigns:
        chosen = select_campaign(candidates, campaign)
        cooled = selections.filter(
            (pl.col("playbook_campaign") == campaign.id)
            & (pl.col("last_send_date") > send_date - timedelta(days=campaign.cooldown_days))
        )
        chosen = chosen.join(cooled.select("customer_id"), on="customer_id", how="anti")
        since = send_date - timedelta(days=campaign.cap_days - 1)
        capped = (
            contacts.filter(pl.col("send_date") >= since)
            .group_by("customer_id")
            .len()
            .filter(pl.col("len") >= campaign.cap_messages)
        )
        chosen = chosen.join(capped.select("customer_id"), on="customer_id", how="anti")
        draw = holdout_draw(playbook.seed, campaign.id, chosen["customer_id"])
        rows = chosen.select(
            pl.lit(day).alias("as_of_date"),
            pl.lit(send_date).alias("send_date"),
            pl.lit(campaign.id).alias("playbook_campaign"),
            pl.lit(campaign_instance_id(campaign, send_date)).alias("campaign_id"),
            "customer_id",
            pl.lit(campaign.channel).alias("channel"),
            (draw < campaign.holdout_share).alias("is_holdout"),
            "segment_id",
            "segment_name",
            "rank_score",
            pl.lit(campaign.window_days).alias("measurement_window_days"),
            pl.lit(playbook.version).alias("playbook_version"),
        ).cast(AUDIENCE_SCHEMA)
        parts.append(rows)
        sent = rows.filter(~pl.col("is_holdout")).select("customer_id", "send_date")
        contacts = pl.concat([contacts, sent])
    if not parts:
        return pl.DataFrame(schema=AUDIENCE_SCHEMA)
    return pl.concat(parts).sort(["playbook_campaign", "customer_id"])


def audiences_of_day(
    conn: duckdb.DuckDBPyConnection, day: date, settings: Any, playbook: Any
) -> pl.DataFrame:
    """``audiences`` rows of ``day``: the playbook applied to the warehouse (DailyTable
    compute; ``playbook`` is the :class:`~seg_pipeline.activation.resources.PlaybookFile`
    resource or a :class:`Playbook`)."""
    book = playbook if isinstance(playbook, Playbook) else playbook.load()
    send_date = day + timedelta(days=1)
    longest_cap = max(c.cap_days for c in book.campaigns)
    longest_cooldown = max(c.cooldown_days for c in book.campaigns)
    candidates = query_frame(conn, read_sql("activation/audience_candidates"), {"as_of_date": day})
    contacts = query_frame(
        conn,
        read_sql("activation/recent_contacts"),
        {"as_of_date": day, "start_date": send_date - timedelta(days=longest_cap - 1)},
    )
    selections = query_frame(
        conn,
        read_sql("activation/recent_selections"),
        {"as_of_date": day, "start_date": send_date - timedelta(days=longest_cooldown)},
    )
    return audience_rows(candidates, contacts, selections, book, day)
