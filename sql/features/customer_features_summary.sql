-- Run metadata of customer_features: customers with a completed order on the run's last day.
select count(*) filter (where count_orders > 0) as customers_with_orders_last_day
from customer_features
where as_of_date = $end_date
