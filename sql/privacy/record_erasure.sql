-- record_erasure: the tombstone of every customer of _erase_ids once their rows are gone and
-- verified: the keyed hash of the id, never the id (audit rows: record_erasure_audit.sql).
insert or replace into erased_customers
select
    pseudonymize(customer_id) as customer_key,
    $request_id,
    now()::timestamp as erased_at
from _erase_ids
