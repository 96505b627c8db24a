-- champions_of_day: the champion version of each target on $as_of_date.
select target, champion_version
from predictive_models
where as_of_date = $as_of_date
