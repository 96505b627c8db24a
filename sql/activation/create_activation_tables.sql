-- The activation tables that audiences reads before it has written: its own earlier days
-- (frequency caps, cool-downs; rows: seg_pipeline/activation/audiences.py) and the suppressions.
create table if not exists audiences (
    as_of_date date,
    send_date date,
    playbook_campaign varchar,
    campaign_id varchar,
    customer_id varchar,
    channel varchar,
    is_holdout boolean,
    segment_id bigint,
    segment_name varchar,
    rank_score double,
    measurement_window_days integer,
    playbook_version varchar
);

-- marketing_suppressions: customers no campaign may select (unsubscribed at the delivery tool,
-- complained, erased), whatever their consent flag says. Filled by the delivery tool's
-- suppression feed or an erasure; read by audiences.
create table if not exists marketing_suppressions (
    customer_id varchar,
    reason varchar,
    suppressed_at timestamp
);

-- uplift_scores: read by audiences (rank_by: uplift) whether or not an uplift model exists yet
-- (rows: seg_pipeline/activation/uplift_daily.py).
create table if not exists uplift_scores (
    as_of_date date,
    customer_id varchar,
    uplift_email double,
    uplift_sms double,
    uplift_push double,
    uplift_model_version varchar
)
