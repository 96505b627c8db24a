"""Audiences on a generated month: consent, suppression, conditions, caps, cool-downs and the
deterministic treated/holdout split."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from seg_pipeline.activation.assets import unknown_segments
from seg_pipeline.activation.audiences import audience_rows, audiences_of_day
from seg_pipeline.activation.playbook import Playbook, PlaybookFile, load_playbook
from seg_pipeline.resources import query_frame, read_sql
from seg_pipeline.settings import Settings
from tests.activation.conftest import ACTIVATION_START
from tests.conftest import MONTH_END, warehouse_for

DAY = MONTH_END - timedelta(days=1)
NO_CONTACTS = pl.DataFrame(schema={"customer_id": pl.String, "send_date": pl.Date})
NO_SELECTIONS = pl.DataFrame(
    schema={"playbook_campaign": pl.String, "customer_id": pl.String, "last_send_date": pl.Date}
)


def playbook(tmp_path: Path, body: str, seed: int = 1) -> Playbook:
    path = tmp_path / f"playbook-{abs(hash(body))}.yaml"
    path.write_text(f"seed: {seed}\ncampaigns:\n{body}")
    return load_playbook(path)


EVERYONE = """\
  - id: everyone
    channel: email
    holdout_share: 0.2
    frequency_cap: {max_messages: 99, days: 7}
"""


@pytest.fixture
def conn(loaded_settings: Settings) -> duckdb.DuckDBPyConnection:
    with warehouse_for(loaded_settings).connection() as connection:
        yield connection


def candidates(conn: duckdb.DuckDBPyConnection, day: date = DAY) -> pl.DataFrame:
    return query_frame(conn, read_sql("activation/audience_candidates"), {"as_of_date": day})


def test_candidates_have_consent_and_suppressed_customers_are_left_out(conn) -> None:
    consented = set(
        conn.sql(
            "select customer_id from customer_features where as_of_date = $d "
            "and has_marketing_consent",
            params={"d": DAY},
        )
        .pl()["customer_id"]
        .to_list()
    )
    found = candidates(conn)
    assert set(found["customer_id"].to_list()) == consented
    assert 0 < len(consented) < conn.sql("select count(*) from customer_scores").fetchall()[0][0]
    gone = sorted(consented)[:5]
    conn.executemany(
        "insert into marketing_suppressions values (?, 'unsubscribed', ?)",
        [(c, DAY) for c in gone] + [(sorted(consented)[5], DAY + timedelta(days=1))],
    )
    after = set(candidates(conn)["customer_id"].to_list())
    assert after == consented - set(gone)  # a suppression dated later does not act yet


def test_the_split_is_deterministic_stable_and_near_the_share(conn, tmp_path: Path) -> None:
    book = playbook(tmp_path, EVERYONE)
    found = candidates(conn)
    first = audience_rows(found, NO_CONTACTS, NO_SELECTIONS, book, DAY)
    again = audience_rows(
        found.sample(fraction=1.0, shuffle=True, seed=3), NO_CONTACTS, NO_SELECTIONS, book, DAY
    )
    assert first.equals(again)
    assert first.height == found.height
    share = first["is_holdout"].mean()
    sd = (0.2 * 0.8 / first.height) ** 0.5
    assert abs(share - 0.2) < 4 * sd
    # the same customer is in the same group of the campaign on another day
    later = audience_rows(candidates(conn, MONTH_END), NO_CONTACTS, NO_SELECTIONS, book, MONTH_END)
    both = first.join(later, on="customer_id", suffix="_later")
    assert both.height > 0.9 * first.height
    assert (both["is_holdout"] == both["is_holdout_later"]).all()
    # another campaign (or seed) draws another split
    other = audience_rows(
        found,
        NO_CONTACTS,
        NO_SELECTIONS,
        playbook(tmp_path, EVERYONE.replace("everyone", "other")),
        DAY,
    )
    assert not (other["is_holdout"] == first["is_holdout"]).all()
    assert first["campaign_id"].unique().to_list() == [f"everyone-{DAY + timedelta(1):%Y%m%d}"]
    assert (first["send_date"] == DAY + timedelta(days=1)).all()


def test_conditions_segments_and_top_n(conn, tmp_path: Path) -> None:
    found = candidates(conn)
    segment = found["segment_name"].drop_nulls().mode()[0]
    book = playbook(
        tmp_path,
        f"""\
  - id: alive
    channel: sms
    segments: ["{segment}"]
    when: [prob_alive > 0.5]
    frequency_cap: {{max_messages: 99, days: 7}}
  - id: top
    channel: push
    rank_by: prob_alive
    max_audience: 25
    frequency_cap: {{max_messages: 99, days: 7}}
""",
    )
    rows = audience_rows(found, NO_CONTACTS, NO_SELECTIONS, book, DAY)
    alive = rows.filter(pl.col("playbook_campaign") == "alive")
    expected = found.filter((pl.col("segment_name") == segment) & (pl.col("prob_alive") > 0.5))
    assert 0 < alive.height == expected.height < found.height
    assert set(alive["customer_id"]) == set(expected["customer_id"])
    top = rows.filter(pl.col("playbook_campaign") == "top")
    assert top.height == 25
    assert top["rank_score"].min() >= found["prob_alive"].drop_nulls().sort(descending=True)[24]


def test_frequency_caps_cool_downs_and_playbook_order(conn, tmp_path: Path) -> None:
    found = candidates(conn)
    ids = sorted(found["customer_id"].to_list())
    send = DAY + timedelta(days=1)
    book = playbook(
        tmp_path,
        """\
  - id: first
    channel: email
    frequency_cap: {max_messages: 2, days: 7}
    cooldown_days: 10
  - id: second
    channel: sms
    frequency_cap: {max_messages: 1, days: 3}
""",
    )
    contacts = pl.DataFrame(
        {
            # two messages in the last 7 days: capped for "first" (and for "second")
            "customer_id": [ids[0], ids[0], ids[1], ids[1], ids[2]],
            "send_date": [
                send - timedelta(6),
                send - timedelta(1),
                # two, but one of them 7 days before the send day: under the cap
                send - timedelta(7),
                send - timedelta(1),
                # one 5 days before: fine for "second" (3 days), counts for "first"
                send - timedelta(5),
            ],
        }
    )
    selections = pl.DataFrame(
        {
            "playbook_campaign": ["first", "first", "second"],
            "customer_id": [ids[3], ids[4], ids[5]],
            # 9 days ago: inside the 10-day cool-down; 10 days ago: outside
            "last_send_date": [send - timedelta(9), send - timedelta(10), send - timedelta(1)],
        }
    )
    rows = audience_rows(found, contacts, selections, book, DAY)
    first = rows.filter(pl.col("playbook_campaign") == "first")
    second = rows.filter(pl.col("playbook_campaign") == "second")
    chosen = set(first["customer_id"])
    assert ids[0] not in chosen and ids[3] not in chosen
    assert {ids[1], ids[2], ids[4]} <= chosen
    # "second" allows one message in 3 days: today's treated of "first" already have it, the
    # holdout of "first" receive nothing and stay eligible
    treated_first = set(first.filter(~pl.col("is_holdout"))["customer_id"])
    held_first = set(first.filter(pl.col("is_holdout"))["customer_id"])
    assert not treated_first & set(second["customer_id"])
    assert held_first and held_first <= set(second["customer_id"]) | {ids[5]}
    assert ids[5] in set(first["customer_id"])


def test_the_job_wrote_audiences_a_recomputed_day_matches(activated: Settings) -> None:
    with warehouse_for(activated).connection() as conn:
        counts = conn.sql(
            "select playbook_campaign, count(distinct as_of_date), count(*), "
            "count(*) filter (where is_holdout) from audiences where as_of_date >= $d "
            "and playbook_version = $v group by all order by all",
            params={"d": ACTIVATION_START, "v": load_playbook(activated.playbook_path).version},
        ).fetchall()
        written = conn.sql(
            "select * from audiences where as_of_date = $d order by all", params={"d": DAY}
        ).pl()
        again = audiences_of_day(conn, DAY, None, PlaybookFile(path=str(activated.playbook_path)))
    assert [c[:2] for c in counts] == [("likely_buyers_email", 14), ("top_push", 14)]
    assert all(0 < held < n for _, _, n, held in counts)
    assert again.sort(written.columns).cast(written.schema).equals(written)
    # the cool-down (the window) keeps a customer in one running send of a campaign at a time
    with warehouse_for(activated).connection() as conn:
        overlaps = conn.sql(
            "select count(*) from audiences a join audiences b using (playbook_campaign, "
            "customer_id) where a.send_date < b.send_date and a.as_of_date >= $d "
            "and b.send_date < a.send_date + a.measurement_window_days",
            params={"d": ACTIVATION_START},
        ).fetchall()[0][0]
    assert overlaps == 0


def test_unknown_segment_names_are_reported_with_their_line(conn, tmp_path: Path) -> None:
    known = candidates(conn)["segment_name"].drop_nulls().unique().sort()[0]
    path = tmp_path / "playbook.yaml"
    path.write_text(
        f'campaigns:\n  - id: a\n    channel: email\n    segments:\n      - "{known}"\n'
        "      - Nobody by this name\n"
    )
    assert unknown_segments(conn, DAY, PlaybookFile(path=str(path))) == [
        ("a", "Nobody by this name", 6)
    ]
