-- Copy the remaining rows of the old key store (attached as vault_keys_old) into a freshly
-- created one (vault_keys): the rewrite leaves no trace of destroyed keys in free blocks.
insert into vault_keys.data_keys
select customer_id, wrapped_key, created_at
from vault_keys_old.data_keys
