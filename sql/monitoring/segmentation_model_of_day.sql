-- The segmentation model in force on $as_of_date and its fit day (no row before the first model).
select model_version, fitted_on
from segmentation_model
where as_of_date = $as_of_date and model_version is not null
