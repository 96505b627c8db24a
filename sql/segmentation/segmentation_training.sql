-- Training rows of the segmentation model fitted on $as_of_date: customer_features snapshots of
-- the rolling window [$start_date, $as_of_date], at most $max_rows of them, picked by a seeded
-- hash of (customer, day) so the same window and seed always give the same rows (Spark's
-- xxhash64 can stand in for hash). Only the keys are sorted; the full rows are joined after.
with picked as (
    select customer_id, as_of_date
    from customer_features
    where as_of_date between $start_date and $as_of_date
    order by
        hash(customer_id || '|' || cast(as_of_date as varchar) || '|' || cast($seed as varchar)),
        customer_id,
        as_of_date
    limit $max_rows
)

select features.*
from customer_features as features
inner join picked using (customer_id, as_of_date)
where features.as_of_date between $start_date and $as_of_date
order by features.customer_id, features.as_of_date
