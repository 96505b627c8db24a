"""Benchmark: one day of the feature layer at scale (1,000,000 customers, a year of history).

Synthetic staging tables are built directly in a DuckDB file with SQL (``range()``), with the
exact column names and types of the ``stg_*`` tables (``sql/staging/*.sql`` minus the control
columns the staging step drops), then one day of each feature step is timed through the plain
daily tables of :mod:`seg_pipeline.features.assets` (``write_day``), each step in a child process
of its own so
its peak resident memory is its own (``os.wait4`` reports the child's ``ru_maxrss``). Results
are printed and appended to ``benchmarks/results/features.jsonl``.

    python -m benchmarks.bench_features [--customers 1000000] [--web-events-per-day 1000000]
        [--web-days 91] [--db PATH] [--rebuild] [--steps customer_features,...]

Default data (about 10 GB of DuckDB file, a few minutes to build; reused while the file exists
with the same sizes):

- ``stg_crm_customers``: 70 % of the customers delivered on the first day, the rest signing up
  evenly over the year, plus 0.2 % of them updated each day (one row per version);
- ``stg_orders``: 6 orders per customer per year on average (skewed: some customers buy much
  more), 1-4 lines each (about 15 million lines), 3 % of orders arriving 1-7 days late, 0.1 % of
  lines re-delivered later (the latest delivery wins);
- ``stg_campaign_sends``: a campaign a week to 40 % of the customers known then (about 20 million
  sends);
- ``stg_reviews`` / ``review_nlp``: 1.5 reviews per customer per year;
- ``stg_web_events``: the last ``--web-days`` days at ``--web-events-per-day`` events, sessions
  of 1-9 events, 75 % of them of a logged-in customer.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from benchmarks.common import run_child

RESULTS = Path(__file__).parent / "results" / "features.jsonl"
DAY = date(2025, 12, 31)  # the timed day: the last day of the year of history
HISTORY_DAYS = 365
STEPS = (
    "customer_features_full",
    "customer_features",
    "clv_model",
    "customer_clv",
    "review_topic_model",
    "review_nlp",
)

# Positional pseudo-random numbers: u(i, salt) is uniform in [0, 1), the same on every run.
MACROS = """
create or replace macro u(i, salt) as (hash(i, salt) % 1000000007) / 1000000007.0;
create or replace macro pick(i, salt, n) as cast(floor(u(i, salt) * n) as bigint);
create or replace macro cid(i) as 'C' || lpad(cast(i as varchar), 8, '0');
create or replace macro hex16(i, salt) as lpad(to_hex(hash(i, salt)), 16, '0');
-- customers 0 .. base-1 arrive on day 0, the others sign up evenly over the year
create or replace macro arrival_day(i) as
    case when i < $base then 0 else (i - $base) * $days // ($customers - $base) end;
-- every customer with an index below known(d) had arrived by day d
create or replace macro known(d) as $base + (d * ($customers - $base)) // $days;
"""

CRM = """
create or replace table stg_crm_customers as
with all_versions as (
    select i as c, arrival_day(i) as d, 0 as v from range($customers) t(i)
    union all
    -- 0.2 % of the known customers updated each day
    select pick(j, 'upd', known(j % $days)), j % $days, 1 + j from range($updates) t(j)
),
versions as (
    -- one version per customer and day, as staging keeps
    select * from all_versions
    qualify row_number() over (partition by c, d order by v desc) = 1
)
select
    cid(c) as customer_id,
    md5('e' || c) || md5('E' || c) as email_hash,
    md5('p' || c) || md5('P' || c) as phone_hash,
    md5('n' || c) || md5('N' || c) as name_hash,
    u(c, 'mail') > 0.02 as is_email_valid,
    cast(1950 + pick(c, 'by', 55) as bigint) as birth_year,
    ['F', 'M', 'X'][1 + pick(c, 'g', 3)] as gender,
    ['DE', 'FR', 'GB', 'ES', 'IT', 'NL'][1 + pick(c, 'cc', 6)] as country_code,
    'city' || pick(c, 'city', 500) as city,
    case when c < $base then $start - cast(1 + pick(c, 'su', 1000) as integer)
        else $start + cast(d as integer) end as signup_date,
    u(c + v, 'consent') < 0.6 as has_marketing_consent,
    cast($start + cast(d as integer) as timestamp) + to_seconds(pick(c + v, 'ts', 80000))
        as updated_at,
    $start + cast(d as integer) as arrival_date,
    'crm_customers/' || strftime($start + cast(d as integer), '%Y-%m-%d') || '.csv'
        as _source_file,
    cast(row_number() over (partition by d order by c, v) as bigint) as _record_number
from versions
"""

ORDERS = """
create or replace table stg_orders as
with orders as (
    select
        o,
        pick(o, 'day', $days) as d,
        -- skewed: a few customers buy a lot
        cast(floor(pow(u(o, 'who'), 1.6) * known(pick(o, 'day', $days))) as bigint) as c,
        case when u(o, 'late') < 0.03 then 1 + pick(o, 'lag', 7) else 0 end as lag,
        1 + pick(o, 'lines', 4) as n_lines
    from range($orders) t(o)
),
lines as (
    select o.*, l as line_number, (o.o * 4 + l) as k from orders o, range(1, o.n_lines + 1) t(l)
),
typed as (
    select
        'O' || lpad(cast(o as varchar), 10, '0') as order_id,
        cast(line_number as integer) as line_number,
        cid(c) as customer_id,
        'P' || lpad(cast(pick(k, 'prod', 5000) as varchar), 4, '0') as product_id,
        case when u(k, 'nocat') < 0.003 then null else
            ['electronics', 'fashion', 'home', 'beauty', 'sports', 'toys', 'grocery',
             'books'][1 + pick(k, 'cat', 8)] end as category,
        ['web', 'app', 'store', 'marketplace'][1 + pick(o, 'ch', 4)] as channel,
        case when u(k, 'st') < 0.9 then 'completed' when u(k, 'st') < 0.97 then 'returned'
            else 'cancelled' end as order_status,
        cast(1 + pick(k, 'q', 3) as integer) as quantity,
        cast(5 + pick(k, 'price', 19500) / 100.0 as decimal(12, 2)) as unit_price,
        d, lag, k
    from lines
),
priced as (
    select *,
        case when u(k, 'disc') < 0.15 then cast(quantity * unit_price * 0.1 as decimal(12, 2))
            else cast(0 as decimal(12, 2)) end as discount_amount,
        cast($start + cast(d as integer) as timestamp) + to_seconds(pick(k, 'sec', 86400))
            as ordered_at
    from typed
),
delivered as (
    select *, least(d + lag, $days - 1) as a from priced
    union all
    -- 0.1 % of lines delivered again 1-3 days later, within the 7 days staging accepts (the
    -- latest delivery wins)
    select *, d + least(lag + 1 + pick(k, 'redo', 3), 7) from priced
    where u(k, 'again') < 0.001 and lag < 7 and d + 7 < $days
)
select
    order_id, line_number, customer_id, product_id, category, channel, order_status,
    quantity, unit_price, discount_amount,
    quantity * unit_price - discount_amount as line_amount,
    ordered_at,
    cast(ordered_at as date) as order_date,
    cast(ordered_at as date) < $start + cast(a as integer) as is_late,
    $start + cast(a as integer) as arrival_date,
    'orders/' || strftime($start + cast(a as integer), '%Y-%m-%d') || '.csv' as _source_file,
    cast(k as bigint) as _record_number
from delivered
"""

CAMPAIGNS = """
create or replace table stg_campaign_sends as
with campaigns as (select w, w * 7 + 3 as d from range($days // 7) t(w))
select
    'CMP' || lpad(cast(w as varchar), 4, '0') as campaign_id,
    cid(i) as customer_id,
    ['email', 'sms', 'push'][1 + pick(w, 'cch', 3)] as channel,
    false as is_control_group,
    u(i * 64 + w, 'open') < 0.25 as is_opened,
    u(i * 64 + w, 'open') < 0.06 as is_clicked,
    u(i * 64 + w, 'open') < 0.01 as is_converted,
    cast($start + cast(d as integer) as timestamp) + to_seconds(pick(i, 'sent', 3600))
        as sent_at,
    $start + cast(d as integer) as sent_date,
    u(i * 64 + w, 'clate') < 0.01 as is_late,
    $start + cast(d as integer) + cast(u(i * 64 + w, 'clate') < 0.01 as integer)
        as arrival_date,
    'campaign_sends/' || strftime($start + cast(d as integer), '%Y-%m-%d') || '.parquet'
        as _source_file,
    cast(i as bigint) as _record_number
from campaigns, range($customers) t(i)
where i < known(d) and u(i * 64 + w, 'to') < 0.4
"""

REVIEWS = """
create or replace table stg_reviews as
with r as (
    select
        j,
        pick(j, 'rday', $days) as d,
        cast(floor(u(j, 'rwho') * known(pick(j, 'rday', $days))) as bigint) as c,
        cast(1 + pick(j, 'stars', 5) as integer) as rating
    from range($reviews) t(j)
)
select
    'R' || lpad(cast(j as varchar), 9, '0') as review_id,
    cid(c) as customer_id,
    'P' || lpad(cast(pick(j, 'rprod', 5000) as varchar), 4, '0') as product_id,
    rating,
    [
        'Terrible quality, it broke after one day and support never answered.',
        'Disappointing, the size was wrong and the return took weeks.',
        'It is okay, does the job but nothing special about the material.',
        'Good value for the price, delivery was quick and the parcel was fine.',
        'Excellent quality, I love it, super fast shipping and great service.'
    ][rating] || ' Item ' || pick(j, 'rprod', 5000) || '.' as review_text,
    cast($start + cast(d as integer) as timestamp) + to_seconds(pick(j, 'rsec', 86400))
        as reviewed_at,
    $start + cast(d as integer) as review_date,
    false as is_late,
    $start + cast(d as integer) as arrival_date,
    'reviews/' || strftime($start + cast(d as integer), '%Y-%m-%d') || '.jsonl' as _source_file,
    cast(j as bigint) as _record_number
from r
"""

# review_nlp as the review_nlp step would write it (synthetic scores), so customer_features can
# be timed on its own.
REVIEW_NLP = """
create or replace table review_nlp as
select
    review_id, customer_id, product_id, rating, review_date, true as is_known_customer,
    (rating - 3) / 2.5 as sentiment_compound,
    case when rating >= 4 then 'positive' when rating <= 2 then 'negative' else 'neutral' end
        as sentiment_label,
    cast(pick(review_id, 't', 6) as integer) as topic_id,
    ['quality', 'delivery', 'price', 'size', 'service', 'material'][1 + pick(review_id, 't', 6)]
        as topic_label,
    cast(0.5 as double) as topic_weight,
    arrival_date - cast(dayofweek(arrival_date) as integer) as topic_model_fitted_on,
    arrival_date
from stg_reviews
"""

WEB = """
create or replace table stg_web_events as
with sessions as (
    select
        s,
        $web_first + pick(s, 'sday', $web_days) as d,
        case when u(s, 'anon') < 0.75
            then cid(cast(floor(pow(u(s, 'swho'), 1.3) * known($web_first + pick(s, 'sday',
                $web_days))) as bigint)) end as who,
        1 + pick(s, 'len', 9) as n,
        ['mobile', 'desktop', 'tablet'][1 + pick(s, 'dev', 3)] as device,
        ['direct', 'google', 'email', 'social'][1 + pick(s, 'ref', 4)] as referrer,
        pick(s, 'ssec', 80000) as sec
    from range($sessions) t(s)
),
events as (
    select s.*, e, s.s * 16 + e as k from sessions s, range(s.n) t(e)
),
typed as (
    select
        *,
        case when u(k, 'et') < 0.45 then 'product_view' when u(k, 'et') < 0.75 then 'page_view'
            when u(k, 'et') < 0.9 then 'search' when u(k, 'et') < 0.98 then 'add_to_cart'
            else 'checkout' end as event_type,
        cast($start + cast(d as integer) as timestamp) + to_seconds(sec + e * 40) as occurred_at,
        case when u(s, 'wlate') < 0.02 then 1 else 0 end as lag
    from events
)
select
    hex16(k, 'ev') as event_id,
    hex16(s, 'se') as session_id,
    case when e = 0 then who end as customer_id,
    hex16(s, 'an') as anonymous_id,
    who as resolved_customer_id,
    case when event_type in ('product_view', 'add_to_cart')
        then 'P' || lpad(cast(pick(k, 'wp', 5000) as varchar), 4, '0') end as product_id,
    event_type,
    '/x/' || pick(k, 'url', 1000) as url,
    device,
    referrer,
    occurred_at,
    cast(occurred_at as date) as event_date,
    lag > 0 as is_late,
    least(cast(occurred_at as date) + lag, $end) as arrival_date,
    'web_events/' || strftime(least(cast(occurred_at as date) + lag, $end), '%Y-%m-%d')
        || '.jsonl' as _source_file,
    cast(k as bigint) as _record_number
from typed
"""


def sizes(args: argparse.Namespace) -> dict[str, int]:
    c = args.customers
    return {
        "customers": c,
        "updates": c * HISTORY_DAYS // 500,
        "orders": 6 * c,
        "reviews": 3 * c // 2,
        "web_days": args.web_days,
        "web_events_per_day": args.web_events_per_day,
    }


def build(path: Path, spec: dict[str, int]) -> dict[str, float]:
    """Create the synthetic staging tables in ``path``; seconds per table."""
    import duckdb

    start = DAY - timedelta(days=HISTORY_DAYS - 1)
    params = {
        "customers": spec["customers"],
        "base": spec["customers"] * 7 // 10,
        "days": HISTORY_DAYS,
        "start": start,
        "end": DAY,
        "updates": spec["updates"],
        "orders": spec["orders"],
        "reviews": spec["reviews"],
        "web_first": HISTORY_DAYS - spec["web_days"],
        "web_days": spec["web_days"],
        # sessions average 5 events
        "sessions": spec["web_days"] * spec["web_events_per_day"] // 5,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    seconds = {}
    with duckdb.connect(str(path)) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        conn.execute("SET enable_progress_bar = false")
        for statement in MACROS.strip().split(";"):
            if statement.strip():
                sql = statement
                for name in ("base", "days", "customers"):
                    sql = sql.replace(f"${name}", str(params[name]))
                conn.execute(sql)
        for name, sql in [
            ("stg_crm_customers", CRM),
            ("stg_orders", ORDERS),
            ("stg_campaign_sends", CAMPAIGNS),
            ("stg_reviews", REVIEWS),
            ("review_nlp", REVIEW_NLP),
            ("stg_web_events", WEB),
        ]:
            began = time.perf_counter()
            used = {k: v for k, v in params.items() if f"${k}" in sql}
            # stored in arrival order, as the daily staging writes (one arrival day at a time)
            conn.execute(f"{sql}\norder by arrival_date", used)
            seconds[name] = round(time.perf_counter() - began, 1)
            rows = conn.execute(f"select count(*) from {name}").fetchall()[0][0]
            print(f"built {name}: {rows:,} rows in {seconds[name]} s", flush=True)
        conn.execute("create table bench_spec as select $spec as spec", {"spec": json.dumps(spec)})
    return seconds


def existing_spec(path: Path) -> dict | None:
    import duckdb

    if not path.exists():
        return None
    try:
        with duckdb.connect(str(path), read_only=True) as conn:
            return json.loads(conn.execute("select spec from bench_spec").fetchall()[0][0])
    except duckdb.Error:
        return None


def _child(step: str, db: str) -> None:
    """Run one step on a copy-free connection; the parent measures the process."""
    from seg_pipeline.features import assets as fa
    from seg_pipeline.features.lifetime_value import CLVModelConfig, CLVScoreConfig
    from seg_pipeline.features.reviews import TopicModelConfig
    from seg_pipeline.models.store import ModelStore
    from seg_pipeline.partitions import days_between
    from seg_pipeline.resources import Warehouse, transaction
    from seg_pipeline.tables import write_day

    warehouse = Warehouse(database=db, pseudonymisation_key="bench-key")
    models = ModelStore(model_dir=str(Path(db).parent / "models"))
    out: dict[str, object] = {}

    def features(day: date, incremental: bool) -> int:
        state = fa.CustomerFeaturesConfig(incremental=incremental)
        write_day(conn, fa.WEB_SESSION_FRAGMENTS_TABLE, day)
        write_day(conn, fa.CUSTOMER_FEATURE_STATE_TABLE, day, state)
        write_day(conn, fa.CUSTOMER_FEATURES_TABLE, day)
        return conn.execute(
            "select count(*) from customer_features where as_of_date = $as_of_date",
            {"as_of_date": day},
        ).fetchall()[0][0]

    with warehouse.connection() as conn:
        started = time.perf_counter()
        with transaction(conn):
            if step == "customer_features_full":
                for arrival in days_between(DAY - timedelta(days=89), DAY - timedelta(days=1)):
                    write_day(conn, fa.WEB_SESSION_FRAGMENTS_TABLE, arrival)
                out["rows"] = features(DAY, incremental=False)
            elif step == "customer_features":
                # the daily run: the previous day is already there, today is added
                for arrival in days_between(DAY - timedelta(days=89), DAY - timedelta(days=2)):
                    write_day(conn, fa.WEB_SESSION_FRAGMENTS_TABLE, arrival)
                features(DAY - timedelta(days=1), incremental=False)
                started = time.perf_counter()
                out["rows"] = features(DAY, incremental=True)
            elif step == "clv_model":
                settings = CLVModelConfig(refit_every_days=1)
                row = write_day(conn, fa.CLV_MODEL_TABLE, DAY, settings, models=models)
                out["customers"] = row["n_customers"][0]
            elif step == "customer_clv":
                frame = write_day(conn, fa.CUSTOMER_CLV_TABLE, DAY, CLVScoreConfig(), models=models)
                out["rows"] = frame.height
            elif step == "review_topic_model":
                settings = TopicModelConfig(lookback_days=30, refit_every_days=1)
                row = write_day(conn, fa.REVIEW_TOPIC_MODEL_TABLE, DAY, settings, models=models)
                out["training_reviews"] = row["n_reviews"][0]
            elif step == "review_nlp":
                out["rows"] = write_day(conn, fa.REVIEW_NLP_TABLE, DAY, models=models).height
            else:
                raise SystemExit(f"unknown step {step}")
        out["seconds_in_step"] = time.perf_counter() - started
    print(json.dumps(out))


def _measure(step: str, db: Path) -> dict:
    result, wall, peak_mb = run_child(
        "benchmarks.bench_features", ["--child", step, "--db", str(db)]
    )
    row = {
        "step": step,
        "seconds": round(result.pop("seconds_in_step"), 2),
        "seconds_with_startup": round(wall, 2),
        "peak_rss_mb": round(peak_mb, 1),
        **result,
    }
    print(
        f"{step:<24}{row['seconds']:>9.2f} s{row['peak_rss_mb']:>10.0f} MB  "
        + ", ".join(f"{k}={v}" for k, v in result.items()),
        flush=True,
    )
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--web-events-per-day", type=int, default=1_000_000)
    parser.add_argument("--web-days", type=int, default=91)
    parser.add_argument(
        "--db",
        type=Path,
        default=Path(tempfile.gettempdir()) / "seg-bench-features" / "warehouse.duckdb",
        help="DuckDB file of the synthetic data (kept and reused between runs)",
    )
    parser.add_argument("--rebuild", action="store_true", help="rebuild the synthetic data")
    parser.add_argument("--steps", default=",".join(STEPS), help="comma-separated steps")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, str(args.db))
        return 0

    spec = sizes(args)
    build_seconds: dict[str, float] = {}
    if args.rebuild or existing_spec(args.db) != spec:
        print(f"building synthetic staging tables in {args.db} ...", flush=True)
        build_seconds = build(args.db, spec)
    else:
        print(f"reusing {args.db}", flush=True)
    import duckdb

    with duckdb.connect(str(args.db), read_only=True) as conn:
        tables = ["stg_crm_customers", "stg_orders", "stg_campaign_sends", "stg_reviews",
                  "stg_web_events"]  # fmt: skip
        rows = {t: conn.execute(f"select count(*) from {t}").fetchall()[0][0] for t in tables}
    load = os.getloadavg()[0]
    print(f"\nOne day ({DAY}) at {spec['customers']:,} customers; load average {load:.2f}")
    print(f"{'step':<24}{'seconds':>11}{'peak RSS':>10}")
    steps = [_measure(step, args.db) for step in args.steps.split(",")]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a", encoding="utf-8") as handle:
        record = {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()} {os.cpu_count()} cpu",
            "load_average_1m": round(load, 2),
            "day": DAY.isoformat(),
            "spec": spec,
            "rows": rows,
            "db_bytes": args.db.stat().st_size,
            "build_seconds": build_seconds,
            "steps": steps,
        }
        handle.write(json.dumps(record) + "\n")
    print(f"\nappended to {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
