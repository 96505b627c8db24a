-- At most $max_rows customers of $as_of_date with their features and segment, picked by a
-- seeded hash (the same day and seed always give the same points), for the 2-D projection.
select features.*, segments.segment_id
from customer_features as features
inner join customer_segments as segments using (customer_id, as_of_date)
where features.as_of_date = $as_of_date
order by hash(customer_id || '|' || cast($seed as varchar)), customer_id
limit $max_rows
