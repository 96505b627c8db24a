-- stg_web_events: one row per web event, typed and deduplicated within its arrival day.
-- Grain: (arrival_date, event_id). Anonymous events are stitched to the customer who logged in
-- during the same session (resolved_customer_id); event_date is the real (UTC) day. Events that
-- break a row rule (no id, bad timestamp or event type, unknown customer) go to quarantine.
with

source as (
    select * from raw_web_events
    where _partition_date between $start_date and $end_date
),

known_customers as (
    select customer_id, min(arrival_date) as first_arrival_date
    from stg_crm_customers
    where arrival_date <= $end_date
    group by customer_id
),

typed as (
    select
        -- ids
        nullif(trim(event_id), '') as event_id,
        nullif(trim(session_id), '') as session_id,
        nullif(trim(customer_id), '') as customer_id,
        nullif(trim(anonymous_id), '') as anonymous_id,
        nullif(trim(product_id), '') as product_id,

        -- text
        nullif(lower(trim(event_type)), '') as event_type,
        nullif(trim(url), '') as url,
        nullif(lower(trim(device)), '') as device,
        nullif(lower(trim(referrer)), '') as referrer,

        -- timestamps: UTC wall time by the one rule (sql/ingest/utc_timestamp.sql)
        utc_timestamp(occurred_at) as occurred_at,

        -- lineage and the raw text the rules quote
        source._partition_date as arrival_date,
        source._source_file,
        source._record_number,
        source.occurred_at as raw_occurred_at,
        hash(struct_pack(
            source.event_id, source.session_id, source.customer_id, source.anonymous_id,
            source.occurred_at, source.event_type, source.url, source.product_id, source.device,
            source.referrer
        )) as _content_hash
    from source
),

checked as (
    select
        t.*,
        cast(t.occurred_at as date) as event_date,
        case
            when t.event_id is null then 'null_key'
            when t.customer_id is not null and k.customer_id is null then 'unknown_customer'
            when t.occurred_at is null then 'invalid_timestamp'
            when cast(t.occurred_at as date) > t.arrival_date then 'future_timestamp'
            when cast(t.occurred_at as date) < t.arrival_date - $max_lateness_days then 'too_late'
            when t.event_type is null or t.event_type not in (
                'page_view', 'product_view', 'search', 'add_to_cart', 'checkout'
            ) then 'unknown_event_type'
        end as _rule
    from typed as t
    left join known_customers as k
        on t.customer_id = k.customer_id and t.arrival_date >= k.first_arrival_date
),

explained as (
    select
        *,
        case _rule
            when 'null_key' then 'event_id is empty'
            when 'unknown_customer' then 'customer ' || customer_id || ' is not in the CRM'
            when 'invalid_timestamp'
                then 'occurred_at is not a timestamp: ' || coalesce(raw_occurred_at, 'null')
            when 'future_timestamp'
                then 'happened on ' || event_date || ', after arrival on ' || arrival_date
            when 'too_late'
                then 'happened on ' || event_date || ', more than ' || $max_lateness_days
                    || ' days before arrival on ' || arrival_date
            when 'unknown_event_type'
                then 'event_type is not a known event: ' || coalesce(event_type, 'null')
        end as _reason
    from checked
),

repeated_keys as (
    -- Keys that rows breaking no rule share on an arrival day, with the version that wins:
    -- the last delivery. Found by aggregating the key alone, so the wide rows are never sorted.
    select
        arrival_date,
        event_id,
        max(_record_number) as kept_record_number,
        arg_max(_content_hash, _record_number) as kept_content_hash
    from explained
    where _rule is null
    group by arrival_date, event_id
    having count(*) > 1
),

versions as (
    -- Each row with the winning version of its key, if the key repeats. An exact repeat of
    -- the winner is redundant; a different earlier version breaks the rule duplicate_key.
    select
        e.*,
        e._rule is null
        and e._record_number <> r.kept_record_number as _is_superseded,
        r.kept_content_hash
    from explained as e
    left join repeated_keys as r
        on e.arrival_date = r.arrival_date and e.event_id = r.event_id
),

session_customers as (
    -- The customer who logged in during each session of an arrival day, from the rows kept.
    select arrival_date, session_id, max(customer_id) as session_customer_id
    from versions
    where _rule is null and not coalesce(_is_superseded, false) and customer_id is not null
    group by arrival_date, session_id
),

deduplicated as (
    -- The last delivery of a key wins; an exact repeat is dropped, a conflicting earlier
    -- version is quarantined. Anonymous events of a kept row belong to the customer who
    -- logged in during the same session.
    select
        v.* exclude (_rule, _reason, _is_superseded, kept_content_hash),
        case
            when v._rule is not null then v._rule
            when v._is_superseded and v._content_hash <> v.kept_content_hash
                then 'duplicate_key'
        end as _rule,
        case
            when v._rule is not null then v._reason
            when v._is_superseded and v._content_hash <> v.kept_content_hash
                then 'a later line of the same file has the same event_id'
        end as _reason,
        coalesce(v._is_superseded and v._content_hash = v.kept_content_hash, false)
            as _is_redundant,
        coalesce(
            v.customer_id,
            case
                when v._rule is null and not coalesce(v._is_superseded, false)
                    then s.session_customer_id
            end
        ) as resolved_customer_id
    from versions as v
    left join session_customers as s
        on v.arrival_date = s.arrival_date
        and v.session_id is not distinct from s.session_id
)

select
    event_id,
    session_id,
    customer_id,
    anonymous_id,
    resolved_customer_id,
    product_id,
    event_type,
    url,
    device,
    referrer,
    occurred_at,
    event_date,
    event_date < arrival_date as is_late,
    arrival_date,
    _source_file,
    _record_number,
    _rule,
    _reason,
    _is_redundant
from deduplicated
