-- uplift_model_of_day: the uplift model in force on $as_of_date (uplift_models).
select champion_version
from uplift_models
where as_of_date = $as_of_date
