-- Customers moving between segments from the day before to $as_of_date: one row per
-- (from_segment_id, to_segment_id) pair with its count. from_segment_id is null for customers
-- new on $as_of_date, to_segment_id null for customers gone from it (e.g. erased).
with today as (
    select customer_id, segment_id
    from customer_segments
    where as_of_date = $as_of_date
),

yesterday as (
    select customer_id, segment_id
    from customer_segments
    where as_of_date = cast($as_of_date as date) - 1
)

select
    cast($as_of_date as date) as as_of_date,
    yesterday.segment_id as from_segment_id,
    today.segment_id as to_segment_id,
    count(*) as n_customers
from today
full outer join yesterday using (customer_id)
group by all
order by from_segment_id nulls first, to_segment_id nulls first
