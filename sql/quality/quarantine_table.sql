-- The quarantine: every delivered row that did not make it into a table, with its reason.
create table if not exists quarantine (
    source varchar not null,
    table_name varchar not null,
    stage varchar not null,
    arrival_date date not null,
    rule varchar not null,
    reason varchar,
    source_file varchar,
    line_number bigint,
    column_name varchar,
    raw_record varchar,
    quarantined_at timestamp not null
)
