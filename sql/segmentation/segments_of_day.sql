-- Every customer's segment on $as_of_date, sorted by customer.
select customer_id, segment_id
from customer_segments
where as_of_date = $as_of_date
order by customer_id
