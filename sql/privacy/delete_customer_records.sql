-- Remove every vault record of the customers in the registered frame _wanted_customers.
delete from vault.crm_personal
where customer_id in (select w.customer_id from _wanted_customers as w)
