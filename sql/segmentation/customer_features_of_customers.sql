-- The customer_features rows of the customers of _erase_ids over [$start_date, $end_date]: the
-- rows a model fitted on that window may have kept as training rows.
select f.*
from customer_features as f
semi join _erase_ids as e on f.customer_id = e.customer_id
where f.as_of_date between $start_date and $end_date
order by f.as_of_date, f.customer_id
