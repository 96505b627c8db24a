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

deduplicated as (
    -- The last delivery of a key wins; an exact repeat is dropped, a conflicting earlier
    -- version is quarantined. Windows stay within the arrival day.
    select
        * exclude (_rule, _reason),
        case
            when _rule is not null then _rule
            when _keep_rank > 1 and _content_hash <> _kept_hash then 'duplicate_key'
        end as _rule,
        case
            when _rule is not null then _reason
            when _keep_rank > 1 and _content_hash <> _kept_hash
                then 'a later line of the same file has the same event_id'
        end as _reason,
        _rule is null and _keep_rank > 1 and _content_hash = _kept_hash as _is_redundant
    from (
        select
            *,
            row_number() over w as _keep_rank,
            first_value(_content_hash) over w as _kept_hash
        from explained
        window w as (
            partition by arrival_date, event_id, _rule is null
            order by _record_number desc
        )
    )
),

stitched as (
    -- Anonymous events belong to the customer who logged in during the same session.
    select
        *,
        coalesce(
            customer_id,
            max(customer_id) over (
                partition by arrival_date, session_id, _rule is null and not _is_redundant
            )
        ) as resolved_customer_id
    from deduplicated
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
from stitched
