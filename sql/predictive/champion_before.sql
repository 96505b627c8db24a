-- champion_before: the champion of $target on the latest predictive_models day before
-- $as_of_date (the champion a day starts with).
select champion_version
from predictive_models
where target = $target and as_of_date < $as_of_date
order by as_of_date desc
limit 1
