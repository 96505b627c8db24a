"""Issue 17: the lift interval covers the planted effect on a small simulated closed loop.

The loop, on a copy of the loaded month (1,000 customers, January 2026), with real components
only: the activation stage (Dagster) selects a playbook campaign's audience on each of the
month's last eight days and writes the delivery exports; the generator, run again with the
month fixture's own configuration and those exports as its activation feed, sends the campaign
to the exported customers the next day (their planted uplift on the channel makes extra
orders) and rewrites the landing files from the first send day on; the loaders and staging
(Dagster) load those days again; ``campaign_lift`` measures treated against holdout, and
``simulate.lift_against_planted`` sets the measured lift beside the uplift the generator
planted (its truth folder).

Is this order of the steps honest? Every audience here is selected before any response
exists, whereas in ``make simulate`` the audience of day D sees the responses to the sends up
to D. But the playbook selects every consented customer every day (no score condition, a
one-day cool-down, a frequency cap that cannot bind: checked below), and neither consent nor
the existence of a customer's score row depends on orders, so the day-by-day loop would select
the same customers, split them the same way (a hash of the customer) and export the same
delivery files; only the segment recorded with each audience row and the recommended products
of the pseudonymous audience export could differ, and neither reaches the generator or the
lift. (With score conditions the scores of later days would be stale here; the split would
still be random, so the lift would stay unbiased.)

Why one campaign, sent daily, measured over one day: the planted effect is small (an SMS
causes an extra order with a probability near 2%), so only repeated sends to the whole
consented base measure it to better than its own size; the generator places the extra order
on the send day, so a longer window adds only organic orders (noise); and an interval
covering its planted effect is a 95% event, so every further campaign would add a chance of a
failure by luck. The holdout is fixed per customer, so the pooled interval (customer-sends
taken as independent) is somewhat too narrow: on this month, splits drawn at random give
seven daily sends per customer a coverage near 92% rather than 95%.

The coverage assertion alone would pass for many a broken measurement, so the test also
measures the lift of the same audiences on the month without the feed (same customers, same
organic orders): the change of the lift is the effect of the sends with the between-customer
noise cancelled, and it must match the planted effect within four of its standard errors, a
band that excludes zero (a measurement that missed the extra orders, sent the holdout too or
swapped the groups fails it).
"""

from __future__ import annotations

import filecmp
import json
import math
import pickle
import shutil
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from seg_pipeline.activation.lift import TOO_SMALL, Z95
from seg_pipeline.definitions import build_definitions
from seg_pipeline.generator import GenerationSummary, GeneratorConfig, generate
from seg_pipeline.resources import query_frame, read_sql
from seg_pipeline.settings import Settings
from seg_pipeline.simulate import lift_against_planted
from seg_pipeline.sources import CRM_CUSTOMERS
from tests.conftest import (
    MONTH_END,
    MONTH_START,
    built_once,
    copy_vault,
    run_range,
    warehouse_for,
)

CAMPAIGN = "loop_sms"
LOOP_START = MONTH_END - timedelta(days=7)  # first audience (scores of this day)
FIRST_SEND = LOOP_START + timedelta(days=1)  # its send day: landing files rewritten from here
LOOKBACK_DAYS = (MONTH_END - FIRST_SEND).days  # campaign_lift measures sends from FIRST_SEND
# max_messages far above the eight sends of the loop plus the month's other campaigns: a cap
# that bound would keep treated customers out more often than held-out ones.
PLAYBOOK = f"""\
seed: 17
campaigns:
  - id: {CAMPAIGN}
    channel: sms
    holdout_share: 0.5
    frequency_cap: {{max_messages: 50, days: 7}}
    measurement_window_days: 1
    cooldown_days: 1
"""
LOOP_ASSETS = ["raw_orders", "stg_orders", "raw_campaign_sends", "stg_campaign_sends"]
LIFT: dict[str, Any] = {"op_config": {"campaign_lift": {"lookback_days": LOOKBACK_DAYS}}}
WITHOUT_FEED_LIFT = "loop_lift_without_feed"  # campaign_lift of MONTH_END before the feed
WITHOUT_FEED_ORDERS = "loop_orders_without_feed"  # stg_orders before the feed
TOLERANCE_SE = 4.0

# Per customer and group: the sends measured and how many of them converted with the feed
# and not without it (or the reverse: -1), by campaign_outcomes' definition of a conversion.
PAIRED_OUTCOMES = f"""
with

finished as (
    select customer_id, is_holdout, send_date, measurement_window_days as days
    from audiences
    where
        playbook_campaign = $campaign
        and send_date >= $start_date
        and send_date + measurement_window_days - 1 <= $as_of_date
),

per_send as (
    select
        f.customer_id,
        f.is_holdout,
        cast(exists (
            select 1 from stg_orders as o
            where o.customer_id = f.customer_id and o.order_status <> 'cancelled'
                and o.arrival_date <= $as_of_date
                and o.order_date between f.send_date and f.send_date + f.days - 1
        ) as int) - cast(exists (
            select 1 from {WITHOUT_FEED_ORDERS} as o
            where o.customer_id = f.customer_id and o.order_status <> 'cancelled'
                and o.arrival_date <= $as_of_date
                and o.order_date between f.send_date and f.send_date + f.days - 1
        ) as int) as gained
    from finished as f
)

select customer_id, is_holdout, count(*) as sends, sum(gained) as gained
from per_send
group by all
"""


def loop_settings(root: Path, month_settings: Settings) -> Settings:
    """Everything the loop writes lives under ``root``; the month's folders are only read."""
    return replace(
        month_settings,
        data_dir=root,
        landing_dir=root / "landing",
        truth_dir=root / "truth",
        model_dir=root / "models",
        warehouse_path=root / "warehouse.duckdb",
        playbook_path=root / "playbook.yaml",
        export_dir=root / "exports",
        delivery_dir=root / "feed",
    )


def month_generator_config(month_settings: Settings, settings: Settings) -> GeneratorConfig:
    """The configuration the month fixture was generated with (from its truth's params.json),
    with the loop's folders, the delivery exports as activation feed and files written from
    the first send day on."""
    used = json.loads((month_settings.truth_dir / "params.json").read_text())["config"]
    assert (used["start_date"], used["end_date"]) == (str(MONTH_START), str(MONTH_END))
    shares = used["persona_shares"]
    return GeneratorConfig(
        landing_dir=settings.landing_dir,
        truth_dir=settings.truth_dir,
        start_date=MONTH_START,
        end_date=MONTH_END,
        n_customers=used["n_customers"],
        seed=used["seed"],
        messiness=used["messiness"],
        web_events_per_day=used["web_events_per_day"],
        persona_shares=None if shares is None else tuple((p, s) for p, s in shares),
        holdout_share=used["holdout_share"],
        activation_feed_dir=settings.delivery_dir,
        write_from=FIRST_SEND,
    )


@pytest.fixture(scope="session")
def closed_loop(
    month: tuple[Settings, GenerationSummary],
    loaded_month: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Settings, GenerationSummary]:
    """The loop's settings (warehouse, feed, landing and truth folders) and the summary of
    the generator run that read the feed; built once per session. The warehouse keeps the
    campaign_lift rows and the orders of the month without the feed in two tables of the
    test's own (WITHOUT_FEED_LIFT, WITHOUT_FEED_ORDERS)."""
    month_settings = month[0]

    def build(root: Path) -> None:
        settings = loop_settings(root, month_settings)
        shutil.copy(loaded_month, settings.warehouse_path)
        copy_vault(loaded_month.parent, settings)
        settings.playbook_path.write_text(PLAYBOOK)
        defs = build_definitions(settings)
        # the audiences of the last eight days and their delivery exports (the feed)
        audiences = ["audiences", "campaign_exports"]
        assert run_range(defs, LOOP_START, MONTH_END, assets=audiences).success
        # the lift of these audiences on the month as generated without the feed
        assert run_range(defs, MONTH_END, MONTH_END, assets=["campaign_lift"], **LIFT).success
        with warehouse_for(settings).connection() as conn:
            conn.execute(
                f"create table {WITHOUT_FEED_LIFT} as "
                "select * from campaign_lift where as_of_date = $d",
                {"d": MONTH_END},
            )
            conn.execute(f"create table {WITHOUT_FEED_ORDERS} as select * from stg_orders")
        # the customers receive the exported sends and respond; load the rewritten days
        summary = generate(month_generator_config(month_settings, settings))
        (root / "summary.pickle").write_bytes(pickle.dumps(summary))
        assert run_range(defs, FIRST_SEND, MONTH_END, assets=LOOP_ASSETS).success
        assert run_range(defs, MONTH_END, MONTH_END, assets=["campaign_lift"], **LIFT).success

    root = built_once(tmp_path_factory, "closed_loop", build)
    summary = pickle.loads((root / "summary.pickle").read_bytes())
    return loop_settings(root, month_settings), summary


def audience_frame(settings: Settings) -> pl.DataFrame:
    """The loop campaign's audience rows of every day."""
    with warehouse_for(settings).connection() as conn:
        return conn.sql(
            "select as_of_date, send_date, campaign_id, customer_id, is_holdout from audiences "
            "where playbook_campaign = $c",
            params={"c": CAMPAIGN},
        ).pl()


def pairs(frame: pl.DataFrame) -> set[tuple[str, str]]:
    """The (campaign_id, customer_id) pairs of ``frame``: one send each."""
    return set(frame.select("campaign_id", "customer_id").iter_rows())


def test_the_feed_reaches_the_generator_for_treated_customers_only(
    closed_loop: tuple[Settings, GenerationSummary], month: tuple[Settings, GenerationSummary]
) -> None:
    """Every treated customer of a send day in the month is delivered, sent by the generator
    (its truth) and logged in the send log the pipeline loads back; no held-out customer is
    in any of them; and the regenerated month is the fixture's month (same CRM files)."""
    settings, summary = closed_loop
    audiences = audience_frame(settings).filter(pl.col("send_date") <= MONTH_END)
    treated = pairs(audiences.filter(~pl.col("is_holdout")))
    held = pairs(audiences.filter(pl.col("is_holdout")))
    assert audiences["send_date"].n_unique() == (MONTH_END - LOOP_START).days
    assert len(held) > 0.4 * audiences.height and len(treated) > 0.4 * audiences.height

    delivered: set[tuple[str, str]] = set()
    for day in sorted(set(audiences["as_of_date"])):
        name = f"{CAMPAIGN}-{day + timedelta(days=1):%Y%m%d}.csv"
        delivered |= pairs(pl.read_csv(settings.delivery_dir / day.isoformat() / name))
    sent = pairs(pl.read_parquet(settings.truth_dir / "activation_sends.parquet"))
    with warehouse_for(settings).connection() as conn:
        logged = pairs(
            conn.sql(
                "select campaign_id, customer_id from stg_campaign_sends "
                "where campaign_id like $c and not is_control_group",
                params={"c": f"{CAMPAIGN}-%"},
            ).pl()
        )
    # every treated customer is delivered: the measured lift is per treated customer, the
    # planted effect per send, so the two compare only if the groups coincide
    assert delivered == treated
    assert sent == delivered
    assert not held & (delivered | sent | logged)
    assert logged <= sent and len(logged) >= 0.9 * len(sent)  # 2% of rows are made messy
    assert summary.activation["sends"] == len(sent)
    assert summary.activation["unknown_customer"] == summary.activation["invalid_rows"] == 0

    for day in (FIRST_SEND, MONTH_END):
        rewritten = CRM_CUSTOMERS.path_for(settings.landing_dir, day)
        assert filecmp.cmp(rewritten, CRM_CUSTOMERS.path_for(month[0].landing_dir, day), False)


def test_every_consented_customer_is_selected_every_day(
    closed_loop: tuple[Settings, GenerationSummary],
) -> None:
    """The audiences cannot depend on responses (see the module docstring): each day's is the
    day's whole candidate base, so the frequency cap and the cool-down never kept anyone out."""
    settings, _ = closed_loop
    audiences = audience_frame(settings)
    with warehouse_for(settings).connection() as conn:
        for day in sorted(set(audiences["as_of_date"])):
            candidates = query_frame(
                conn, read_sql("activation/audience_candidates"), {"as_of_date": day}
            )
            chosen = audiences.filter(pl.col("as_of_date") == day)
            assert set(chosen["customer_id"]) == set(candidates["customer_id"])


def paired_effect(settings: Settings) -> tuple[float, float]:
    """The feed's effect on the lift measured from the same sends with and without it
    (treated minus holdout change in conversion rate) and its standard error, customers as
    clusters (a customer's sends share their group)."""
    with warehouse_for(settings).connection() as conn:
        per_customer = query_frame(
            conn,
            PAIRED_OUTCOMES,
            {"campaign": CAMPAIGN, "start_date": FIRST_SEND, "as_of_date": MONTH_END},
        ).with_columns(pl.col("sends", "gained").cast(pl.Float64))
    means: dict[bool, float] = {}
    variances: dict[bool, float] = {}
    for held in (False, True):
        group = per_customer.filter(pl.col("is_holdout") == held)
        n, k = group["sends"].sum(), group.height
        mean = group["gained"].sum() / n
        residual = group["gained"] - mean * group["sends"]
        means[held] = mean
        variances[held] = (residual**2).sum() / n**2 * k / (k - 1)
    return means[False] - means[True], math.sqrt(variances[False] + variances[True])


def test_lift_interval_covers_the_planted_effect_on_a_small_simulated_loop(
    closed_loop: tuple[Settings, GenerationSummary],
) -> None:
    """campaign_lift's 95% interval of every playbook campaign with a conclusion holds the
    uplift the generator planted; the interval is no wider than the sample sizes allow; and
    the lift the feed added matches the planted effect closely (module docstring)."""
    settings, _ = closed_loop
    rows = lift_against_planted(settings, MONTH_END)
    assert [r["playbook_campaign"] for r in rows] == [CAMPAIGN]
    with warehouse_for(settings).connection() as conn:
        without_feed = conn.sql(
            f"select playbook_campaign, 100 * absolute_lift as lift_points "
            f"from {WITHOUT_FEED_LIFT} where scope = 'campaign'"
        ).pl()
    gained, se = paired_effect(settings)
    for row in rows:
        assert row["conclusion"] != TOO_SMALL
        assert row["sends"] == (MONTH_END - LOOP_START).days
        planted, low, high = row["planted_points"], row["low_points"], row["high_points"]
        assert planted > 0
        assert low <= planted <= high, row
        # variances clustered by customer: a customer's (y_i - p n_i)^2 is at most n_i^2 and
        # n_i at most the campaign's sends k, so a rate's variance is at most k / N (x 1.01
        # for m / (m - 1)): the width is bounded by the group sizes
        k = row["sends"]
        bound = 2 * Z95 * 100 * math.sqrt(1.01 * k * (1 / row["n_treated"] + 1 / row["n_holdout"]))
        assert 0 < high - low <= bound
        before = without_feed.filter(pl.col("playbook_campaign") == row["playbook_campaign"])
        change = row["lift_points"] - before["lift_points"].item()
        # the paired outcomes reproduce the product's change of lift (so se is its error)
        assert math.isclose(change, 100 * gained, abs_tol=0.1 * 100 * se)
        # the band of the last check excludes zero: a measurement without effect fails it
        assert planted > TOLERANCE_SE * 100 * se
        assert abs(change - planted) <= TOLERANCE_SE * 100 * se, (change, planted, 100 * se)
