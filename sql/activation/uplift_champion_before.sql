-- uplift_champion_before: the uplift model in force on the latest day of uplift_models before
-- $as_of_date (none before the first champion).
select champion_version
from uplift_models
where as_of_date < $as_of_date
order by as_of_date desc
limit 1
