-- model_registry: one row per fitted model version of every kind (review topics, lifetime value,
-- segmentation, and later the predictive models). The artifact itself is a file in the model
-- directory (path relative to it); content_hash is the SHA-256 of its bytes, checked on load.
create table if not exists model_registry (
    kind varchar not null,
    model_version varchar not null primary key,
    training_start date,
    training_end date not null,
    params json not null,
    metrics json not null,
    details json not null,
    artifact_path varchar not null,
    artifact_format varchar not null,
    content_hash varchar not null,
    saved_at timestamp with time zone not null
)
