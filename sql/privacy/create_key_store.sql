-- The key store (a second DuckDB file, attached as `vault_keys`, never backed up with the
-- vault's values): one random data key per customer, wrapped with the key-encryption key
-- (AES-GCM: nonce || ciphertext || tag; associated data: the customer id). Deleting a row is
-- crypto-shredding: every sealed value of that customer, in any copy of the vault, stays
-- unreadable. Grain: customer_id.
create table if not exists vault_keys.data_keys (
    customer_id varchar primary key,
    wrapped_key blob not null,
    created_at timestamp not null
)
