-- stg_orders: one row per order line, typed, trimmed and deduplicated within its arrival day.
-- Grain: (arrival_date, order_id, line_number). order_date is the real (UTC) day of the order;
-- a late row keeps it and is flagged is_late. Orders of customers the CRM has not delivered by
-- the arrival day are kept and flagged is_known_customer = false.
with

source as (
    select * from raw_orders
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
        nullif(trim(order_id), '') as order_id,
        try_cast(trim(line_number) as integer) as line_number,
        nullif(trim(customer_id), '') as customer_id,
        nullif(trim(product_id), '') as product_id,

        -- text
        nullif(lower(trim(category)), '') as category,
        nullif(lower(trim(channel)), '') as channel,
        nullif(lower(trim(status)), '') as order_status,

        -- numerics
        try_cast(trim(quantity) as integer) as quantity,
        try_cast(trim(unit_price) as decimal(12, 2)) as unit_price,
        coalesce(try_cast(trim(discount) as decimal(12, 2)), 0) as discount_amount,

        -- timestamps (UTC)
        cast(try_cast(trim(ordered_at) as timestamptz) as timestamp) as ordered_at,

        -- lineage
        _partition_date as arrival_date,
        _record_number
    from source
),

deduplicated as (
    select * from typed
    where order_id is not null and line_number is not null
    qualify row_number() over (
        partition by arrival_date, order_id, line_number
        order by _record_number
    ) = 1
),

final as (
    select
        d.order_id,
        d.line_number,
        d.customer_id,
        d.product_id,
        d.category,
        d.channel,
        d.order_status,
        d.quantity,
        d.unit_price,
        d.discount_amount,
        d.quantity * d.unit_price - d.discount_amount as line_amount,
        d.ordered_at,
        cast(d.ordered_at as date) as order_date,
        cast(d.ordered_at as date) < d.arrival_date as is_late,
        k.customer_id is not null as is_known_customer,
        d.arrival_date
    from deduplicated as d
    left join known_customers as k
        on d.customer_id = k.customer_id and k.first_arrival_date <= d.arrival_date
)

select * from final
