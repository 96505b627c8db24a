-- stg_crm_customers: one row per customer per arrival day, the latest version the CRM exported
-- that day, typed and pseudonymised. Grain: (arrival_date, customer_id).
-- Clear personal values never leave raw_crm_customers except into restricted.customer_pii.
with

source as (
    select * from raw_crm_customers
    where _partition_date between $start_date and $end_date
),

typed as (
    select
        -- ids
        nullif(trim(customer_id), '') as customer_id,

        -- pseudonymised personal data (keyed hash; the key is never in the repository)
        pseudonymize(nullif(lower(trim(email)), '')) as email_hash,
        pseudonymize(nullif(regexp_replace(phone, '[^0-9+]', '', 'g'), '')) as phone_hash,
        pseudonymize(
            nullif(lower(concat_ws(' ', trim(first_name), trim(last_name))), '')
        ) as name_hash,
        regexp_full_match(lower(trim(email)), '[^@\s]+@[^@\s]+\.[a-z]{2,}') as is_email_valid,
        year(try_cast(trim(birth_date) as date)) as birth_year,

        -- attributes
        case upper(trim(gender)) when 'F' then 'F' when 'M' then 'M' when 'X' then 'X' end
            as gender,
        nullif(upper(trim(country)), '') as country_code,
        nullif(trim(city), '') as city,
        try_cast(trim(signup_date) as date) as signup_date,

        -- booleans
        try_cast(trim(marketing_consent) as boolean) as has_marketing_consent,

        -- timestamps (UTC)
        try_cast(trim(updated_at) as timestamp) as updated_at,

        -- lineage
        _partition_date as arrival_date,
        _record_number
    from source
),

deduplicated as (
    select * from typed
    where customer_id is not null
    qualify row_number() over (
        partition by arrival_date, customer_id
        order by updated_at desc nulls last, _record_number desc
    ) = 1
)

select * exclude (_record_number) from deduplicated
