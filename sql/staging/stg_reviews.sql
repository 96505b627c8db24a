-- stg_reviews: one row per product review, typed and deduplicated within its arrival day.
-- Grain: (arrival_date, review_id). review_date is the real (UTC) day of the review. Reviews
-- that break a row rule (bad key, unknown customer, bad timestamp or rating, text longer than
-- $max_text_length characters) go to quarantine. Text is stored verbatim (whitespace collapsed).
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

        -- timestamps: UTC wall time by the one rule (sql/ingest/utc_timestamp.sql)
        utc_timestamp(reviewed_at) as reviewed_at,

        -- lineage and the raw text the rules quote
        source._partition_date as arrival_date,
        source._source_file,
        source._record_number,
        source.rating as raw_rating,
        source.reviewed_at as raw_reviewed_at,
        hash(struct_pack(
            source.review_id, source.customer_id, source.product_id, source.reviewed_at,
            source.rating, source.review_text
        )) as _content_hash
    from source
),

checked as (
    select
        t.*,
        cast(t.reviewed_at as date) as review_date,
        case
            when t.review_id is null then 'null_key'
            when t.customer_id is null then 'missing_customer'
            when k.customer_id is null then 'unknown_customer'
            when t.reviewed_at is null then 'invalid_timestamp'
            when cast(t.reviewed_at as date) > t.arrival_date then 'future_timestamp'
            when cast(t.reviewed_at as date) < t.arrival_date - $max_lateness_days then 'too_late'
            when t.rating is null or t.rating not between 1 and 5 then 'invalid_rating'
            when length(t.review_text) > $max_text_length then 'text_too_long'
        end as _rule
    from typed as t
    left join known_customers as k
        on t.customer_id = k.customer_id and t.arrival_date >= k.first_arrival_date
),

explained as (
    select
        *,
        case _rule
            when 'null_key' then 'review_id is empty'
            when 'missing_customer' then 'customer_id is empty'
            when 'unknown_customer' then 'customer ' || customer_id || ' is not in the CRM'
            when 'invalid_timestamp'
                then 'reviewed_at is not a timestamp: ' || coalesce(raw_reviewed_at, 'null')
            when 'future_timestamp'
                then 'written on ' || review_date || ', after arrival on ' || arrival_date
            when 'too_late'
                then 'written on ' || review_date || ', more than ' || $max_lateness_days
                    || ' days before arrival on ' || arrival_date
            when 'invalid_rating'
                then 'rating is not an integer from 1 to 5: ' || coalesce(raw_rating, 'null')
            when 'text_too_long'
                then 'review_text has ' || length(review_text) || ' characters, more than '
                    || $max_text_length
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
                then 'a later line of the same file has the same review_id'
        end as _reason,
        _rule is null and _keep_rank > 1 and _content_hash = _kept_hash as _is_redundant
    from (
        select
            *,
            row_number() over w as _keep_rank,
            first_value(_content_hash) over w as _kept_hash
        from explained
        window w as (
            partition by arrival_date, review_id, _rule is null
            order by _record_number desc
        )
    )
)

select
    review_id,
    customer_id,
    product_id,
    rating,
    review_text,
    reviewed_at,
    review_date,
    review_date < arrival_date as is_late,
    arrival_date,
    _source_file,
    _record_number,
    _rule,
    _reason,
    _is_redundant
from deduplicated
