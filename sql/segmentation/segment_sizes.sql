-- Customers per segment and day between $start_date and $end_date (sizes-over-time plot).
select
    as_of_date,
    segment_id,
    any_value(segment_name) as segment_name,
    count(*) as n_customers
from customer_segments
where as_of_date between $start_date and $end_date
group by all
order by all
