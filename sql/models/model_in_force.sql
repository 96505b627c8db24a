-- The version of a kind in force on $as_of_date: the latest trained on or before that day
-- (ties: the latest saved).
select * from model_registry
where kind = $kind and training_end <= $as_of_date
order by training_end desc, saved_at desc, model_version desc
limit 1
