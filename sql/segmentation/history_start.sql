-- The first day of customer_features: where the history the minimum history counts from starts.
select min(as_of_date) as first_day
from customer_features
having count(*) > 0
