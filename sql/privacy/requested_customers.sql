-- requested_customers: the customers the CRM delivered that an erasure request names, by id
-- ($customer_ids), by the keyed hash of the id ($customer_keys: customer_key of the exports)
-- or by the keyed hash of an e-mail address ($email_hashes).
with

known as (
    select distinct customer_id from stg_crm_customers
)

select customer_id
from known
where customer_id in (select unnest($customer_ids::varchar[]))
    or pseudonymize(customer_id) in (select unnest($customer_keys::varchar[]))
union
select customer_id
from stg_crm_customers
where email_hash in (select unnest($email_hashes::varchar[]))
order by customer_id
