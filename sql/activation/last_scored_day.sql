-- last_scored_day: the latest day customer_scores holds (make simulate --continue resumes after
-- it).
select max(as_of_date) as as_of_date
from customer_scores
