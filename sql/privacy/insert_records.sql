-- Append sealed CRM records (registered frame _sealed_records) to the vault.
insert into vault.crm_personal by name
select
    customer_id,
    arrival_date,
    source_file,
    record_number,
    updated_at,
    email_hash,
    phone_hash,
    name_hash,
    sealed
from _sealed_records
