-- New wrapped data keys (registered frame _new_keys); a customer who already has a key keeps it.
insert into vault_keys.data_keys
select customer_id, wrapped_key, now()::timestamp as created_at
from _new_keys
on conflict do nothing
