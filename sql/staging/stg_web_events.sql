-- stg_web_events: one row per web event, typed and deduplicated within its arrival day.
-- Grain: (arrival_date, event_id). Anonymous events are stitched to the customer who logged in
-- during the same session (resolved_customer_id); event_date is the real (UTC) day.
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

        -- timestamps (UTC)
        cast(try_cast(trim(occurred_at) as timestamptz) as timestamp) as occurred_at,

        -- lineage
        _partition_date as arrival_date,
        _record_number
    from source
),

deduplicated as (
    select * from typed
    where event_id is not null
    qualify row_number() over (
        partition by arrival_date, event_id
        order by _record_number
    ) = 1
),

stitched as (
    select
        *,
        coalesce(
            customer_id,
            max(customer_id) over (partition by arrival_date, session_id)
        ) as resolved_customer_id
    from deduplicated
),

final as (
    select
        s.event_id,
        s.session_id,
        s.customer_id,
        s.anonymous_id,
        s.resolved_customer_id,
        s.product_id,
        s.event_type,
        s.url,
        s.device,
        s.referrer,
        s.occurred_at,
        cast(s.occurred_at as date) as event_date,
        cast(s.occurred_at as date) < s.arrival_date as is_late,
        s.resolved_customer_id is null or k.customer_id is not null as is_known_customer,
        s.arrival_date
    from stitched as s
    left join known_customers as k
        on s.resolved_customer_id = k.customer_id and k.first_arrival_date <= s.arrival_date
)

select * from final
