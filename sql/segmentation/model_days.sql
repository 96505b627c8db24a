-- Whether segmentation_model holds $as_of_date (days) and a model is in force then (models; a
-- day before the minimum history has a row without a model).
select
    count(*) as days,
    count(model_version) as models
from segmentation_model
where as_of_date = $as_of_date
