-- stg_campaign_sends: one row per campaign message sent to a customer, deduplicated within its
-- arrival day. Grain: (arrival_date, campaign_id, customer_id). Engagement flags are made
-- consistent with the funnel (a click implies an open, a conversion implies a click).
with

source as (
    select * from raw_campaign_sends
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
        nullif(trim(campaign_id), '') as campaign_id,
        nullif(trim(customer_id), '') as customer_id,

        -- text
        nullif(lower(trim(channel)), '') as channel,

        -- booleans
        coalesce(opened, false) or coalesce(clicked, false) or coalesce(converted, false)
            as is_opened,
        coalesce(clicked, false) or coalesce(converted, false) as is_clicked,
        coalesce(converted, false) as is_converted,

        -- timestamps (UTC)
        cast(sent_at as timestamp) as sent_at,

        -- lineage
        _partition_date as arrival_date,
        _record_number
    from source
),

deduplicated as (
    select * from typed
    where campaign_id is not null and customer_id is not null
    qualify row_number() over (
        partition by arrival_date, campaign_id, customer_id
        order by _record_number
    ) = 1
),

final as (
    select
        d.campaign_id,
        d.customer_id,
        d.channel,
        d.is_opened,
        d.is_clicked,
        d.is_converted,
        d.sent_at,
        cast(d.sent_at as date) as sent_date,
        cast(d.sent_at as date) < d.arrival_date as is_late,
        k.customer_id is not null as is_known_customer,
        d.arrival_date
    from deduplicated as d
    left join known_customers as k
        on d.customer_id = k.customer_id and k.first_arrival_date <= d.arrival_date
)

select * from final
