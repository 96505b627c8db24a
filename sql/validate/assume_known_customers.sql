-- seg-validate without CRM files: every customer id of one raw table ($raw_table) counts as
-- delivered by the CRM long before (unknown_customer cannot be checked without the CRM).
insert into stg_crm_customers by name
select distinct
    nullif(trim(customer_id), '') as customer_id,
    date '0001-01-01' as arrival_date
from query_table($raw_table)
where nullif(trim(customer_id), '') is not null
