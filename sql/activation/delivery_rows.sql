-- delivery_rows: the treated customers of $as_of_date's audiences with the contact field their
-- campaign's channel needs (e-mail for email, phone for sms, none for push: the app knows its
-- users by customer id), from their latest customer_pii version known that day; only customers
-- whose consent still holds that day. The only query whose rows leave the warehouse with
-- personal data. Grain: (campaign_id, customer_id).
with

latest_contact as (
    select customer_id, first_name, email, phone
    from restricted.customer_pii
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
    c.first_name,
    case when a.channel = 'email' then c.email end as email,
    case when a.channel = 'sms' then c.phone end as phone
from audiences as a
semi join consented as k on a.customer_id = k.customer_id
left join latest_contact as c on a.customer_id = c.customer_id
where a.as_of_date = $as_of_date and not a.is_holdout
order by a.campaign_id, a.customer_id
