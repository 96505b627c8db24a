-- The clear personal values of the CRM rows just delivered (temp table _pseudonymised, never
-- written to the warehouse) with their lineage and keyed hashes: what the load seals into the
-- vault. Rows without a customer id have no data key to seal with: their clear values are
-- dropped (they are quarantined by staging, with hashes only), and so are those of erased
-- customers (erased_customers: a re-delivery does not give them a data key again; the load
-- drops their raw rows too).
select
    nullif(trim(customer_id), '') as customer_id,
    _partition_date as arrival_date,
    _source_file as source_file,
    _record_number as record_number,
    updated_at,
    email_hash,
    phone_hash,
    name_hash,
    email,
    phone,
    first_name,
    last_name,
    birth_date
from _pseudonymised
where
    nullif(trim(customer_id), '') is not null
    and pseudonymize(trim(customer_id)) not in (select e.customer_key from erased_customers as e)
