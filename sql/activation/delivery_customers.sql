-- delivery_customers: the treated customers of $as_of_date's audiences whose consent still holds
-- that day (the audiences leave out a consent withdrawn since), each with the CRM record of their
-- latest version staging kept by then (its lineage: the vault seals that record's contact
-- fields). Grain: (campaign_id, customer_id).
with

latest_version as (
    select customer_id, arrival_date, _source_file as source_file, _record_number as record_number
    from stg_crm_customers
    where arrival_date <= $as_of_date
    qualify row_number() over (
        partition by customer_id order by arrival_date desc, updated_at desc
    ) = 1
),

consented as (
    select customer_id
    from customer_features
    where as_of_date = $as_of_date and has_marketing_consent
)

select
    a.campaign_id,
    a.channel,
    a.send_date,
    a.customer_id,
    v.arrival_date,
    v.source_file,
    v.record_number
from audiences as a
semi join consented as k on a.customer_id = k.customer_id
left join latest_version as v on a.customer_id = v.customer_id
where a.as_of_date = $as_of_date and not a.is_holdout
order by a.campaign_id, a.customer_id
