-- One registered model version by its id.
select * from model_registry where model_version = $model_version
