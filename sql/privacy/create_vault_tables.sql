-- The vault (a DuckDB file of its own, attached as `vault`): each CRM record's personal values,
-- sealed with its customer's data key (AES-GCM: nonce || ciphertext || tag), beside only what
-- finds them again: the customer, the record's lineage and the keyed hashes of the main
-- warehouse. Grain: (arrival_date, source_file, record_number).
create table if not exists vault.crm_personal (
    customer_id varchar not null,
    arrival_date date not null,
    source_file varchar not null,
    record_number bigint not null,
    updated_at varchar,
    email_hash varchar,
    phone_hash varchar,
    name_hash varchar,
    sealed blob not null,
    primary key (arrival_date, source_file, record_number)
)
