-- Point a registered model version at a new artifact of the same version (changed in place: an
-- erased customer's rows removed); the rest of its registry row stays.
update model_registry
set
    artifact_path = $artifact_path,
    content_hash = $content_hash
where model_version = $model_version
