-- The sealed vault records named by the registered frame _wanted_records (arrival_date,
-- source_file, record_number), with their wrapped data keys (null once a key is destroyed).
select
    r.customer_id,
    r.arrival_date,
    r.source_file,
    r.record_number,
    r.sealed,
    k.wrapped_key
from vault.crm_personal as r
inner join _wanted_records as w
    on r.arrival_date = w.arrival_date
    and r.source_file = w.source_file
    and r.record_number = w.record_number
left join vault_keys.data_keys as k on r.customer_id = k.customer_id
