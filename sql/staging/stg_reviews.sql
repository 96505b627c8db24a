-- stg_reviews: one row per product review, typed and deduplicated within its arrival day.
-- Grain: (arrival_date, review_id). review_date is the real (UTC) day of the review.
with

source as (
    select * from raw_reviews
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
        nullif(trim(review_id), '') as review_id,
        nullif(trim(customer_id), '') as customer_id,
        nullif(trim(product_id), '') as product_id,

        -- numerics
        try_cast(trim(rating) as integer) as rating,

        -- text: whitespace collapsed, no other change
        nullif(trim(regexp_replace(review_text, '\s+', ' ', 'g')), '') as review_text,

        -- timestamps (UTC)
        cast(try_cast(trim(reviewed_at) as timestamptz) as timestamp) as reviewed_at,

        -- lineage
        _partition_date as arrival_date,
        _record_number
    from source
),

deduplicated as (
    select * from typed
    where review_id is not null
    qualify row_number() over (
        partition by arrival_date, review_id
        order by _record_number
    ) = 1
),

final as (
    select
        d.review_id,
        d.customer_id,
        d.product_id,
        d.rating,
        d.review_text,
        d.reviewed_at,
        cast(d.reviewed_at as date) as review_date,
        cast(d.reviewed_at as date) < d.arrival_date as is_late,
        k.customer_id is not null as is_known_customer,
        d.arrival_date
    from deduplicated as d
    left join known_customers as k
        on d.customer_id = k.customer_id and k.first_arrival_date <= d.arrival_date
)

select * from final
