-- Run metadata of segment_migrations: customers who moved and who stayed on the last day.
select
    cast(coalesce(sum(n_customers) filter (
        where from_segment_id is not null
            and to_segment_id is not null
            and from_segment_id != to_segment_id
    ), 0) as bigint) as moved_last_day,
    cast(coalesce(sum(n_customers) filter (where from_segment_id = to_segment_id), 0) as bigint)
        as stayed_last_day
from segment_migrations
where as_of_date = $end_date
