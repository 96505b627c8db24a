-- record_erasure_audit: one audit row per customer of _erase_ids: the request, the keyed hash
-- of the id, when it was asked for and completed (bound: now() is the transaction's start), and
-- the tables and files and the rows the request deleted ($tables, $files: JSON name -> rows).
insert into erasure_requests
select
    $request_id,
    pseudonymize(customer_id) as customer_key,
    $requested_at::timestamp as requested_at,
    $completed_at::timestamp as completed_at,
    $rows_deleted,
    $tables::json as tables,
    true as verified,
    $files::json as files
from _erase_ids
