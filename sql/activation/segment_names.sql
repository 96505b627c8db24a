-- segment_names: the segment names customers carry on $as_of_date.
select distinct segment_name
from customer_segments
where as_of_date = $as_of_date and segment_name is not null
