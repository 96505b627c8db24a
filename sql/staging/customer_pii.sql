-- customer_pii (schema restricted): the only table downstream of raw that holds clear personal
-- values, beside their keyed hashes so an authorised process can re-identify or erase a customer.
-- Grain: (arrival_date, customer_id), the latest version delivered that day.
with

source as (
    select * from raw_crm_customers
    where _partition_date between $start_date and $end_date
),

cleaned as (
    select
        nullif(trim(customer_id), '') as customer_id,
        nullif(lower(trim(email)), '') as email,
        nullif(regexp_replace(phone, '[^0-9+]', '', 'g'), '') as phone,
        nullif(trim(first_name), '') as first_name,
        nullif(trim(last_name), '') as last_name,
        try_cast(trim(birth_date) as date) as birth_date,
        try_cast(trim(updated_at) as timestamp) as updated_at,
        _partition_date as arrival_date,
        _record_number
    from source
),

deduplicated as (
    select * from cleaned
    where customer_id is not null
    qualify row_number() over (
        partition by arrival_date, customer_id
        order by updated_at desc nulls last, _record_number desc
    ) = 1
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
from deduplicated
