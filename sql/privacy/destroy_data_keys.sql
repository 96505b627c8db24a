-- Crypto-shredding: remove the data keys of the customers in the registered frame
-- _wanted_customers.
delete from vault_keys.data_keys
where customer_id in (select w.customer_id from _wanted_customers as w)
