-- customer_identifiers: every value that identifies the customers of _erase_ids in the warehouse:
-- their ids, the keyed hash of each id (customer_key, the pseudonymous key of exports), the
-- keyed hashes of their e-mail, phone and name, and the web sessions they were seen in (the
-- anonymous events of a session are theirs once stitched). One row per (kind, value).
with

ids as (
    select distinct customer_id from _erase_ids
),

contact_hashes as (
    select c.email_hash, c.phone_hash, c.name_hash
    from stg_crm_customers as c
    inner join ids on c.customer_id = ids.customer_id
),

sessions as (
    select distinct w.session_id
    from stg_web_events as w
    inner join ids on coalesce(w.resolved_customer_id, w.customer_id) = ids.customer_id
    where w.session_id is not null
)

select
    'customer_id' as kind,
    customer_id as value
from ids
union
select
    'customer_key' as kind,
    pseudonymize(customer_id) as value
from ids
union
select
    'email_hash' as kind,
    email_hash as value
from contact_hashes
where email_hash is not null
union
select
    'phone_hash' as kind,
    phone_hash as value
from contact_hashes
where phone_hash is not null
union
select
    'name_hash' as kind,
    name_hash as value
from contact_hashes
where name_hash is not null
union
select
    'session_id' as kind,
    session_id as value
from sessions
