-- Every customer's segment and RFM baseline segment on $as_of_date.
select customer_id, segment_id, rfm_segment
from customer_segments
where as_of_date = $as_of_date
