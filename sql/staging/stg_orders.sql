-- stg_orders: one row per order line, typed, trimmed and deduplicated within its arrival day.
-- Grain: (arrival_date, order_id, line_number). order_date is the real (UTC) day of the order;
-- a late row keeps it and is flagged is_late. Lines that break a row rule (bad key, unknown
-- customer, bad timestamp, quantity, price, discount or status) go to quarantine instead.
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

        -- timestamps: UTC wall time by the one rule (sql/ingest/utc_timestamp.sql)
        utc_timestamp(ordered_at) as ordered_at,

        -- lineage and the raw text the rules quote
        source._partition_date as arrival_date,
        source._source_file,
        source._record_number,
        source.quantity as raw_quantity,
        source.unit_price as raw_unit_price,
        source.discount as raw_discount,
        source.ordered_at as raw_ordered_at,
        hash(struct_pack(
            source.order_id, source.line_number, source.customer_id, source.ordered_at,
            source.product_id, source.category, source.quantity, source.unit_price,
            source.discount, source.channel, source.status
        )) as _content_hash
    from source
),

checked as (
    select
        t.*,
        cast(t.ordered_at as date) as order_date,
        case
            when t.order_id is null or t.line_number is null then 'null_key'
            when t.customer_id is null then 'missing_customer'
            when k.customer_id is null then 'unknown_customer'
            when t.ordered_at is null then 'invalid_timestamp'
            when cast(t.ordered_at as date) > t.arrival_date then 'future_timestamp'
            when cast(t.ordered_at as date) < t.arrival_date - $max_lateness_days then 'too_late'
            when t.quantity is null or t.quantity <= 0 then 'invalid_quantity'
            when t.unit_price is null or t.unit_price <= 0 then 'non_positive_price'
            when t.discount_amount < 0 or t.discount_amount > t.quantity * t.unit_price
                then 'invalid_discount'
            when t.order_status is null
                or t.order_status not in ('completed', 'cancelled', 'returned')
                then 'unknown_status'
        end as _rule
    from typed as t
    left join known_customers as k
        on t.customer_id = k.customer_id and t.arrival_date >= k.first_arrival_date
),

explained as (
    select
        *,
        case _rule
            when 'null_key' then 'order_id or line_number is empty or not an integer'
            when 'missing_customer' then 'customer_id is empty'
            when 'unknown_customer' then 'customer ' || customer_id || ' is not in the CRM'
            when 'invalid_timestamp'
                then 'ordered_at is not a timestamp: ' || coalesce(raw_ordered_at, 'null')
            when 'future_timestamp'
                then 'ordered on ' || order_date || ', after arrival on ' || arrival_date
            when 'too_late'
                then 'ordered on ' || order_date || ', more than ' || $max_lateness_days
                    || ' days before arrival on ' || arrival_date
            when 'invalid_quantity'
                then 'quantity is not a positive integer: ' || coalesce(raw_quantity, 'null')
            when 'non_positive_price'
                then 'unit_price is not a positive amount: ' || coalesce(raw_unit_price, 'null')
            when 'invalid_discount'
                then 'discount ' || coalesce(raw_discount, 'null')
                    || ' is negative or above the line total'
            when 'unknown_status'
                then 'status is not completed, cancelled or returned: '
                    || coalesce(order_status, 'null')
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
                then 'a later line of the same file has the same order_id and line_number'
        end as _reason,
        _rule is null and _keep_rank > 1 and _content_hash = _kept_hash as _is_redundant
    from (
        select
            *,
            row_number() over w as _keep_rank,
            first_value(_content_hash) over w as _kept_hash
        from explained
        window w as (
            partition by arrival_date, order_id, line_number, _rule is null
            order by _record_number desc
        )
    )
)

select
    order_id,
    line_number,
    customer_id,
    product_id,
    category,
    channel,
    order_status,
    quantity,
    unit_price,
    discount_amount,
    quantity * unit_price - discount_amount as line_amount,
    ordered_at,
    order_date,
    order_date < arrival_date as is_late,
    arrival_date,
    _source_file,
    _record_number,
    _rule,
    _reason,
    _is_redundant
from deduplicated
