-- stg_crm_customers: one row per customer per arrival day, the latest version the CRM exported
-- that day, typed and pseudonymised. Grain: (arrival_date, customer_id). Earlier versions of the
-- same day are superseded (kept in raw); rows without an id or a valid updated_at go to
-- quarantine, and so do versions older than the allowed lateness ($max_lateness_days days before
-- arrival), except in a customer's first delivery (e.g. the initial export of existing
-- customers), which may be as old as the customer's sign-up but not older. Clear personal values
-- never reach the warehouse: the load seals them into the vault (seg_pipeline/privacy/vault.py)
-- and raw_crm_customers holds their keyed hashes.
with

source as (
    select * from raw_crm_customers
    where _partition_date between $start_date and $end_date
),

first_deliveries as (
    -- the arrival day on which the CRM first delivered each customer
    select nullif(trim(customer_id), '') as customer_id, min(_partition_date) as first_arrival_date
    from raw_crm_customers
    where _partition_date <= $end_date
    group by 1
),

typed as (
    select
        -- ids
        nullif(trim(customer_id), '') as customer_id,

        -- pseudonymised personal data, as the load left it (keyed hashes; the key is never in
        -- the repository, the clear values are in the vault only)
        email_hash,
        phone_hash,
        name_hash,
        coalesce(is_email_valid, false) as is_email_valid,
        birth_year,

        -- attributes
        case upper(trim(gender)) when 'F' then 'F' when 'M' then 'M' when 'X' then 'X' end
            as gender,
        case
            when regexp_full_match(upper(trim(country)), '[A-Z]{2}') then upper(trim(country))
        end as country_code,
        nullif(trim(city), '') as city,
        try_cast(trim(signup_date) as date) as signup_date,

        -- booleans
        try_cast(trim(marketing_consent) as boolean) as has_marketing_consent,

        -- timestamps: UTC wall time by the one rule (sql/ingest/utc_timestamp.sql)
        utc_timestamp(updated_at) as updated_at,

        -- lineage and the raw text the rules quote
        source._partition_date as arrival_date,
        source._source_file,
        source._record_number,
        source.updated_at as raw_updated_at
    from source
),

checked as (
    select
        t.*,
        case
            when t.customer_id is null then 'null_key'
            when t.updated_at is null then 'invalid_timestamp'
            when cast(t.updated_at as date) > t.arrival_date then 'future_timestamp'
            when cast(t.updated_at as date) < t.arrival_date - $max_lateness_days
                and f.first_arrival_date < t.arrival_date
                then 'too_late'
            when cast(t.updated_at as date) < t.signup_date then 'updated_before_signup'
        end as _rule
    from typed as t
    left join first_deliveries as f on t.customer_id = f.customer_id
),

explained as (
    select
        *,
        case _rule
            when 'null_key' then 'customer_id is empty'
            when 'invalid_timestamp'
                then 'updated_at is not a timestamp: ' || coalesce(raw_updated_at, 'null')
            when 'future_timestamp'
                then 'updated on ' || cast(updated_at as date) || ', after arrival on '
                    || arrival_date
            when 'updated_before_signup'
                then 'updated on ' || cast(updated_at as date)
                    || ', before the customer signed up on ' || signup_date
            when 'too_late'
                then 'updated on ' || cast(updated_at as date) || ', more than '
                    || $max_lateness_days || ' days before arrival on ' || arrival_date
        end as _reason
    from checked
),

latest as (
    -- CDC: the latest version of a customer in the day's export wins; earlier ones are history.
    select
        *,
        _rule is null and row_number() over (
            partition by arrival_date, customer_id, _rule is null
            order by updated_at desc, _record_number desc
        ) > 1 as _is_redundant
    from explained
)

select
    customer_id,
    email_hash,
    phone_hash,
    name_hash,
    is_email_valid,
    birth_year,
    gender,
    country_code,
    city,
    signup_date,
    has_marketing_consent,
    updated_at,
    arrival_date,
    _source_file,
    _record_number,
    _rule,
    _reason,
    _is_redundant
from latest
