-- snapshot_sizes: the days customer_features holds a snapshot of, up to $as_of_date, and how
-- many customers each has (training cut-offs must be snapshot days).
select as_of_date, count(*) as customers
from customer_features
where as_of_date <= $as_of_date
group by as_of_date
order by as_of_date
