-- The erasure ledger. erased_customers: the keyed hash of every erased customer id (never the
-- id), which every later load applies so that a re-delivery or a backfill does not bring the
-- customer back. erasure_requests: one audit row per erased customer of a request: which tables
-- and files lost how many rows, when. Neither holds a clear value.
create table if not exists erased_customers (
    customer_key varchar primary key,
    request_id varchar not null,
    erased_at timestamp not null
);

create table if not exists erasure_requests (
    request_id varchar not null,
    customer_key varchar not null,
    requested_at timestamp not null,
    completed_at timestamp not null,
    rows_deleted bigint not null,
    tables json not null,
    verified boolean not null,
    files json
);

-- files: added after the first release; a warehouse made before gets the column
alter table erasure_requests add column if not exists files json
