-- record_retention_run: the audit row of one purge (create_retention_runs.sql); purged_at is bound
-- from the clock (now() is the transaction's start).
insert into retention_runs
select
    $run_id,
    $as_of_date::date as as_of_date,
    $cutoff_date::date as cutoff_date,
    $retention_days::integer as retention_days,
    $purged_at::timestamp as purged_at,
    $tables::json as tables,
    $files::json as files
