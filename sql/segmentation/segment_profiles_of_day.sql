-- The segments of $as_of_date: id, name, size, share and rules (what the demo prints).
select segment_id, segment_name, n_customers, share, rules
from segment_profiles
where as_of_date = $as_of_date
order by segment_id
