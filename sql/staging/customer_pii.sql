-- customer_pii (schema restricted): the only table downstream of raw that holds clear personal
-- values, beside their keyed hashes so an authorised process can re-identify or erase a customer.
-- Grain: (arrival_date, customer_id): exactly the CRM versions that stg_crm_customers kept.
with

kept as (
    select arrival_date, customer_id, _source_file, _record_number, updated_at
    from stg_crm_customers
    where arrival_date between $start_date and $end_date
),

source as (
    select r.*, k.customer_id as kept_customer_id, k.updated_at as kept_updated_at
    from raw_crm_customers as r
    inner join kept as k
        on r._partition_date = k.arrival_date
        and r._source_file = k._source_file
        and r._record_number = k._record_number
    where r._partition_date between $start_date and $end_date
),

cleaned as (
    select
        kept_customer_id as customer_id,
        nullif(lower(trim(email)), '') as email,
        nullif(regexp_replace(phone, '[^0-9+]', '', 'g'), '') as phone,
        nullif(trim(first_name), '') as first_name,
        nullif(trim(last_name), '') as last_name,
        try_cast(trim(birth_date) as date) as birth_date,
        kept_updated_at as updated_at,
        _partition_date as arrival_date
    from source
)

select
    customer_id,
    email,
    phone,
    first_name,
    last_name,
    birth_date,
    pseudonymize(email) as email_hash,
    pseudonymize(phone) as phone_hash,
    pseudonymize(nullif(lower(concat_ws(' ', first_name, last_name)), '')) as name_hash,
    updated_at,
    arrival_date
from cleaned
