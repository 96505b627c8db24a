"""The activation feed: the pipeline's delivery exports sent by the generator on the next day,
the planted lift of such a campaign, and generation that writes only later days."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from seg_pipeline.evaluation.activation import planted_lift
from seg_pipeline.generator.cli import main
from seg_pipeline.generator.core import read_feed
from tests.generator.conftest import START, World, make_world
from tests.generator.gen_helpers import days, load

FEED_DAY = date(2026, 1, 5)  # the feed's folder: sent on the 6th
SEND_DAY = FEED_DAY + timedelta(days=1)
WINDOW = 7
END = SEND_DAY + timedelta(days=WINDOW - 1)
CUSTOMERS = 3000


def _write_feed(folder: Path, day: date, name: str, frame: pl.DataFrame) -> None:
    (folder / day.isoformat()).mkdir(parents=True, exist_ok=True)
    frame.write_csv(folder / day.isoformat() / name)


def _hashes(landing: Path) -> dict[str, str]:
    return {
        str(p.relative_to(landing)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(landing.rglob("*"))
        if p.is_file()
    }


@dataclass
class Experiment:
    with_feed: World
    without: World
    treated: list[str]
    holdout: list[str]


@pytest.fixture(scope="module")
def experiment(tmp_path_factory: pytest.TempPathFactory) -> Experiment:
    """A feed of campaign ACT1 (sms) to a random half of the customers existing on the feed's
    day, the other half held out; and the same world without the feed."""
    root = tmp_path_factory.mktemp("activation")
    ids = [f"C{i:08d}" for i in range(1, CUSTOMERS + 1)]
    shuffled = np.random.default_rng(17).permutation(ids).tolist()
    treated, holdout = sorted(shuffled[: CUSTOMERS // 2]), sorted(shuffled[CUSTOMERS // 2 :])
    feed = pl.DataFrame(
        {
            "campaign_id": "ACT1",
            "customer_id": [*treated, "C99999999", "nobody", treated[0]],
            "channel": "sms",
            "segment_id": 3,  # other columns are ignored
        }
    )
    _write_feed(root / "feed", FEED_DAY, "act1.csv", feed)
    _write_feed(  # a row without a usable channel: left out, counted
        root / "feed",
        FEED_DAY,
        "bad.csv",
        pl.DataFrame({"campaign_id": ["ACT2"], "customer_id": [treated[1]], "channel": ["fax"]}),
    )
    kw = {"end_date": END, "n_customers": CUSTOMERS, "seed": 21, "messiness": 0.0}
    with_feed = make_world(root / "a", activation_feed_dir=root / "feed", **kw)
    without = make_world(root / "b", **kw)
    return Experiment(with_feed, without, treated, holdout)


def _window_orders(world: World) -> pl.DataFrame:
    """Per customer over the window: orders placed and those not cancelled."""
    orders = load(world.landing, "orders", SEND_DAY, END)
    return orders.group_by("customer_id").agg(
        pl.col("order_id").n_unique().alias("orders"),
        pl.col("order_id").filter(pl.col("status") != "cancelled").n_unique().alias("kept"),
    )


def test_listed_customers_are_sent_the_campaign_on_the_next_day(experiment: Experiment) -> None:
    sends = load(experiment.with_feed.landing, "campaign_sends", START, END)
    act = sends.filter(pl.col("campaign_id") == "ACT1")
    assert sorted(act["customer_id"].to_list()) == experiment.treated  # once each
    assert (act["file_day"] == SEND_DAY).all() and (act["channel"] == "sms").all()
    assert not act["control_group"].any()
    assert act["opened"].mean() > 0.1 and not (act["clicked"] & ~act["opened"]).any()
    assert not sends["campaign_id"].is_in(["ACT2"]).any()
    counts = experiment.with_feed.summary.activation
    assert counts == {
        "files": 2,
        "rows": CUSTOMERS // 2 + 4,
        "invalid_rows": 1,
        "duplicate_rows": 1,
        "unknown_customer": 2,
        "sends": CUSTOMERS // 2,
    }
    truth = pl.read_parquet(experiment.with_feed.truth / "activation_sends.parquet")
    assert truth.height == CUSTOMERS // 2 and (truth["send_date"] == SEND_DAY).all()
    customers = pl.read_parquet(experiment.with_feed.truth / "customers.parquet")
    joined = truth.join(customers, on="customer_id")
    np.testing.assert_allclose(joined["uplift"], joined["campaign_uplift_sms"])
    expected = joined["campaign_uplift_sms"] * joined["alive_at_send"].cast(pl.Float64)
    np.testing.assert_allclose(joined["extra_order_p"], expected)


def test_the_feed_changes_only_the_treated_customers_extra_orders(experiment: Experiment) -> None:
    """Every random step has its stream: the same world without the feed has the same files
    up to the feed's day, and afterwards the same orders but the feed's extra orders."""
    a, b = _hashes(experiment.with_feed.landing), _hashes(experiment.without.landing)
    for day in days(START, FEED_DAY):
        shared = [k for k in a if day.isoformat() in k]
        assert len(shared) == 5 and all(a[k] == b[k] for k in shared)
    joined = (
        pl.DataFrame({"customer_id": experiment.treated + experiment.holdout})
        .join(_window_orders(experiment.with_feed), on="customer_id", how="left")
        .join(_window_orders(experiment.without), on="customer_id", how="left", suffix="_b")
        .fill_null(0)
    )
    held = joined.filter(pl.col("customer_id").is_in(experiment.holdout))
    assert (held["orders"] == held["orders_b"]).all() and (held["kept"] == held["kept_b"]).all()
    truth = pl.read_parquet(experiment.with_feed.truth / "activation_sends.parquet")
    treated = joined.join(truth.select("customer_id", "extra_order"), on="customer_id")
    assert treated.height == len(experiment.treated)
    extra = treated["orders"] - treated["orders_b"]
    assert (extra == treated["extra_order"].cast(pl.UInt32)).all()
    assert 10 < extra.sum() < 100


def test_planted_lift_matches_the_simulation(experiment: Experiment) -> None:
    """The planted lift against (1) the same customers with and without the feed (the only
    difference is the extra orders, so the paired difference is sharp) and (2) the treated
    half against the holdout half, inside the 95% interval of the measured difference."""
    truth = experiment.with_feed.truth
    lift = planted_lift(truth, "ACT1", WINDOW)
    assert lift["sends"] == len(experiment.treated)
    assert (lift["first_send_date"], lift["last_window_day"]) == (
        SEND_DAY.isoformat(),
        END.isoformat(),
    )
    assert 0.005 < lift["orders_per_customer"] < 0.06
    assert 0 < lift["p_any_non_cancelled_order"] < lift["non_cancelled_orders_per_customer"]
    assert lift["non_cancelled_orders_per_customer"] <= lift["orders_per_customer"]

    def outcome(world: World, customers: list[str]) -> pl.DataFrame:
        return (
            pl.DataFrame({"customer_id": customers})
            .join(_window_orders(world), on="customer_id", how="left")
            .fill_null(0)
            .select(
                "customer_id",
                pl.col("orders").cast(pl.Float64),
                (pl.col("kept") > 0).cast(pl.Float64).alias("any"),
            )
        )

    paired = outcome(experiment.with_feed, experiment.treated).join(
        outcome(experiment.without, experiment.treated), on="customer_id", suffix="_b"
    )
    for column, key in (("any", "p_any_non_cancelled_order"), ("orders", "orders_per_customer")):
        diff = (paired[column] - paired[f"{column}_b"]).to_numpy()
        se = max(diff.std(ddof=1) / np.sqrt(diff.size), 1e-9)
        assert abs(diff.mean() - lift[key]) < 3 * se, (column, diff.mean(), lift[key], se)

    treated = outcome(experiment.with_feed, experiment.treated)
    held = outcome(experiment.with_feed, experiment.holdout)
    for column, key in (("any", "p_any_non_cancelled_order"), ("orders", "orders_per_customer")):
        diff = treated[column].mean() - held[column].mean()
        se = np.sqrt(treated[column].var() / treated.height + held[column].var() / held.height)
        assert diff - 1.96 * se < lift[key] < diff + 1.96 * se, (column, diff, lift[key], se)

    # a longer window: the extra order is more often not the only one
    longer = planted_lift(truth, "ACT1", 2 * WINDOW)
    assert longer["p_any_non_cancelled_order"] < lift["p_any_non_cancelled_order"]
    assert longer["orders_per_customer"] == pytest.approx(lift["orders_per_customer"])
    with pytest.raises(ValueError, match="no send of campaign"):
        planted_lift(truth, "ACT2", WINDOW)


def test_a_later_day_with_a_feed_leaves_earlier_days_unchanged(tmp_path: Path) -> None:
    """[start, D] and then [start, D + 1] with a feed for D: identical files for days <= D; and
    writing from D + 1 only gives that day's files of the full run (late rows included)."""
    day = date(2026, 1, 4)
    feed = tmp_path / "feed"
    ids = [f"C{i:08d}" for i in range(1, 301, 2)]
    rows = pl.DataFrame({"campaign_id": "A1", "customer_id": ids, "channel": "push"})
    _write_feed(feed, day, "f.csv", rows)
    kw = {"n_customers": 500, "seed": 4, "messiness": 0.05, "activation_feed_dir": feed}
    short = make_world(tmp_path / "short", end_date=day, **kw)
    long = make_world(tmp_path / "long", end_date=day + timedelta(days=1), **kw)
    hs, hl = _hashes(short.landing), _hashes(long.landing)
    assert len(hl) == len(hs) + 5
    assert all(hl[name] == digest for name, digest in hs.items())
    sends = load(long.landing, "campaign_sends", day + timedelta(days=1), day + timedelta(days=1))
    sent = sends.filter(pl.col("campaign_id") == "A1")["customer_id"]
    # messiness points a few rows at unknown customers and holds a few back (late)
    assert set(sent.filter(sent < "C90000000")) <= set(ids)
    assert sent.len() > 0.9 * len(ids)

    later = make_world(tmp_path / "later", end_date=day + timedelta(days=1), **kw)
    partial = make_world(
        tmp_path / "partial", end_date=day + timedelta(days=1), write_from=day, **kw
    )
    hp, hf = _hashes(partial.landing), _hashes(later.landing)
    written = (day.isoformat(), (day + timedelta(days=1)).isoformat())
    assert sorted(hp) == sorted(k for k in hf if any(d in k for d in written))
    assert all(hf[name] == digest for name, digest in hp.items())
    assert partial.summary.total_rows("orders") == sum(
        n for d, n in later.summary.rows["orders"].items() if d >= day
    )


def test_feed_files_must_name_their_columns(tmp_path: Path) -> None:
    folder = tmp_path / "2026-01-02"
    folder.mkdir()
    pl.DataFrame({"campaign": ["A"], "customer_id": ["C00000001"], "channel": ["sms"]}).write_csv(
        folder / "x.csv"
    )
    with pytest.raises(ValueError, match=r"lacks column\(s\) campaign_id"):
        read_feed(folder)
    rows, counts = read_feed(tmp_path / "2026-01-03")  # no folder: no sends
    assert rows.is_empty() and counts["files"] == 0


def test_cli_passes_the_feed_and_the_first_day_written(tmp_path: Path, capsys) -> None:
    _write_feed(
        tmp_path / "feed",
        date(2026, 3, 1),
        "f.csv",
        pl.DataFrame({"campaign_id": ["A"], "customer_id": ["C00000001"], "channel": ["email"]}),
    )
    code = main(
        [
            "--landing", str(tmp_path / "landing"), "--truth", str(tmp_path / "truth"),
            "--start", "2026-03-01", "--end", "2026-03-03", "--customers", "200",
            "--activation-feed", str(tmp_path / "feed"), "--write-from", "2026-03-02",
        ]
    )  # fmt: skip
    assert code == 0
    assert "sends=1" in capsys.readouterr().out
    assert not (tmp_path / "landing" / "orders" / "2026-03-01.csv").exists()
    assert (tmp_path / "landing" / "orders" / "2026-03-02.csv").is_file()
    assert (tmp_path / "truth" / "activation_sends.parquet").is_file()
