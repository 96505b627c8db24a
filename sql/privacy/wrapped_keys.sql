-- The wrapped data keys of the customers in the registered frame _wanted_customers.
select k.customer_id, k.wrapped_key
from vault_keys.data_keys as k
semi join _wanted_customers as w on k.customer_id = w.customer_id
