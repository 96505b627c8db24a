-- Register a model version (a re-fit of the same version replaces the earlier row).
insert or replace into model_registry values (
    $kind, $model_version, $start_date, $end_date, $params, $metrics, $details,
    $artifact_path, $artifact_format, $content_hash, now()
)
