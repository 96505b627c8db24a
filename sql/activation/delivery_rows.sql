-- delivery_rows: the delivery customers (temp view _delivery_customers, from
-- delivery_customers.sql) with the contact field their campaign's channel needs (e-mail for
-- email, phone for sms, none for push: the app knows its users by customer id), from the clear
-- values the vault opened for their latest CRM record (registered frame _contacts), normalised
-- as staging normalises them before hashing. The only query whose rows leave with personal data.
-- Grain: (campaign_id, customer_id).
with

contact as (
    select
        arrival_date,
        source_file,
        record_number,
        nullif(trim(first_name), '') as first_name,
        nullif(lower(trim(email)), '') as email,
        nullif(regexp_replace(phone, '[^0-9+]', '', 'g'), '') as phone
    from _contacts
)

select
    d.campaign_id,
    d.channel,
    d.send_date,
    d.customer_id,
    c.first_name,
    case when d.channel = 'email' then c.email end as email,
    case when d.channel = 'sms' then c.phone end as phone
from _delivery_customers as d
left join contact as c
    on d.arrival_date = c.arrival_date
    and d.source_file = c.source_file
    and d.record_number = c.record_number
order by d.campaign_id, d.customer_id
