-- retention_runs: one audit row per retention purge: the day it ran for, the cut-off (days before
-- it were purged), the retention in days, when, the rows deleted per table (JSON table ->
-- rows) and the landing files deleted (JSON list of paths). No data values.
create table if not exists retention_runs (
    run_id varchar not null,
    as_of_date date not null,
    cutoff_date date not null,
    retention_days integer not null,
    purged_at timestamp not null,
    tables json not null,
    files json not null
)
