-- Refits among the days between $start_date and $end_date (run metadata).
select count(*) filter (where refitted) as refits
from segmentation_model
where as_of_date between $start_date and $end_date
