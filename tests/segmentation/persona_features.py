"""customer_features on the generator's personas in seconds, without the pipeline.

The project's generator (:class:`seg_pipeline.generator.core.World`) simulates the customers in
memory, by default the world of the month fixture (seed 7, 1,000 customers, January 2026) but
without its messiness and without writing files.  Its clean rows become the staging tables
customer_features reads (``stg_crm_customers``, ``stg_orders``, ``stg_web_events``,
``stg_campaign_sends``, ``review_nlp``; each row arrives the day it happened) in a DuckDB file of
its own, and the pipeline's own feature tables
(:func:`seg_pipeline.features.assets.features_in_full`) compute the snapshot of the last day.
So the frame
has every customer_features column and the personas' behaviour, without the whole pipeline
run of ``loaded_month``.  Review sentiment is VADER's, as in ``review_nlp``; review topics are
null (no topic model is fitted).
"""

from __future__ import annotations

import functools
import tempfile
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from seg_pipeline.features.assets import features_in_full
from seg_pipeline.features.nlp import sentiment_scores
from seg_pipeline.generator import GeneratorConfig
from seg_pipeline.generator.catalogue import build_catalogue, build_people_pools
from seg_pipeline.generator.core import World
from seg_pipeline.generator.ids import day_ms
from seg_pipeline.generator.personas import resolve_personas
from seg_pipeline.resources import Warehouse, registered
from seg_pipeline.segmentation.config import SegmentationConfig
from seg_pipeline.segmentation.preprocess import build_preprocessor, feature_matrix
from tests.conftest import MONTH_START as START

STAGING_SQL = {
    "stg_crm_customers": """
        select customer_id, cast(signup_date as date) as signup_date,
            marketing_consent as has_marketing_consent,
            year(try_cast(birth_date as date)) as birth_year, nullif(gender, '') as gender,
            country as country_code, arrival_date, cast(updated_at as timestamp) as updated_at
        from {rows}""",
    "stg_orders": """
        select customer_id, order_id, line_number,
            cast(cast(ordered_at as timestamptz) as date) as order_date, status as order_status,
            category, channel, quantity, cast(unit_price as decimal(12, 2)) as unit_price,
            cast(discount as decimal(12, 2)) as discount_amount,
            cast(quantity * unit_price - discount as decimal(14, 2)) as line_amount,
            arrival_date, true as is_known_customer
        from {rows}""",
    "stg_web_events": """
        select customer_id as resolved_customer_id, session_id,
            cast(cast(occurred_at as timestamptz) as date) as event_date, event_type,
            arrival_date, true as is_known_customer
        from {rows} where customer_id is not null""",
    "stg_campaign_sends": """
        select campaign_id, customer_id, control_group as is_control_group,
            opened as is_opened, clicked as is_clicked,
            converted as is_converted, cast(sent_at as date) as sent_date, arrival_date,
            true as is_known_customer
        from {rows}""",
    "review_nlp": """
        select review_id, customer_id, rating, sentiment_compound,
            cast(null as varchar) as topic_label,
            cast(cast(reviewed_at as timestamptz) as date) as review_date, arrival_date,
            true as is_known_customer
        from {rows}""",
}


@dataclass(frozen=True)
class PersonaFeatures:
    """customer_features of the last simulated day and each customer's planted persona."""

    features: pl.DataFrame
    personas: np.ndarray
    as_of_date: date


def _simulate(n_customers: int, days: int, seed: int) -> tuple[dict[str, pl.DataFrame], World]:
    """Clean rows of every source over ``days`` days, each with its ``arrival_date``."""
    config = GeneratorConfig(
        landing_dir=Path("unused"),
        truth_dir=Path("unused"),
        start_date=START,
        end_date=START + timedelta(days=days - 1),
        n_customers=n_customers,
        seed=seed,
        messiness=0.0,
    )
    world = World(
        config,
        resolve_personas(config.persona_shares),
        build_catalogue(seed),
        build_people_pools(seed),
    )
    world.init_population()
    parts: dict[str, list[pl.DataFrame]] = {name: [] for name in STAGING_SQL}
    for d in range(days):
        day = START + timedelta(days=d)
        clean = world.simulate_day(d, day)
        events = [
            e.select("customer_id", "session_id", "occurred_at", "event_type")
            for e in world.web_chunks(d, day, day_ms(day), clean.pop("web_sessions"))
        ]
        by_table = {
            "stg_crm_customers": [
                f.select(
                    "customer_id",
                    "signup_date",
                    "marketing_consent",
                    "birth_date",
                    "gender",
                    "country",
                    "updated_at",
                )
                for f in clean["crm_customers"]
            ],
            "stg_orders": clean["orders"],
            "stg_web_events": events,
            "stg_campaign_sends": clean["campaign_sends"],
            "review_nlp": clean["reviews"],
        }
        for table, frames in by_table.items():
            parts[table] += [f.with_columns(arrival_date=pl.lit(day)) for f in frames if f.height]
    rows = {table: pl.concat(frames, how="vertical") for table, frames in parts.items()}
    reviews = rows["review_nlp"]
    rows["review_nlp"] = reviews.with_columns(
        sentiment_compound=pl.Series(sentiment_scores(reviews["review_text"].to_list()))
    )
    return rows, world


@functools.cache
def persona_features(n_customers: int = 1000, days: int = 31, seed: int = 7) -> PersonaFeatures:
    """customer_features of ``n_customers`` generated customers (plus those who sign up on the
    way) as of day ``days``, sorted by ``customer_id``, with their personas.  Cached: treat
    the result as read-only."""
    rows, world = _simulate(n_customers, days, seed)
    as_of = START + timedelta(days=days - 1)
    with tempfile.TemporaryDirectory() as tmp:
        warehouse = Warehouse(database=str(Path(tmp) / "features.duckdb"))
        with warehouse.connection() as conn:
            for table, sql in STAGING_SQL.items():
                with registered(conn, "_rows", rows[table]) as view:
                    conn.execute(f"create table {table} as {sql.format(rows=view)}")
            features = features_in_full(conn, as_of).sort("customer_id")
    truth = world.truth_frame().select("customer_id", "persona")
    personas = features.select("customer_id").join(truth, on="customer_id", how="left")
    return PersonaFeatures(features, personas["persona"].to_numpy(), as_of)


def persona_matrix(n_customers: int = 1000, days: int = 31, seed: int = 7) -> np.ndarray:
    """:func:`persona_features` preprocessed with the default segmentation configuration."""
    config = SegmentationConfig()
    frame = persona_features(n_customers, days, seed).features
    return build_preprocessor(config).fit_transform(feature_matrix(frame, config))
