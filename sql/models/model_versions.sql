-- Every registered version of a kind, oldest first.
select * from model_registry where kind = $kind order by training_end, saved_at, model_version
