-- Customers per segment on $as_of_date (the segment shares compared by model_drift).
select segment_id, count(*) as n_customers
from customer_segments
where as_of_date = $as_of_date
group by segment_id
order by segment_id
