-- _pseudonymised: the CRM rows just parsed (temp table _delivered, clear values) with the keyed
-- hashes and the non-identifying values staging needs, normalised as staging always did (e-mail
-- lower-cased and trimmed, phone digits and '+', names trimmed and joined). The warehouse keeps
-- these columns only; the clear ones go sealed into the vault (sql/privacy/vault_records.sql).
create or replace temp table _pseudonymised as
select
    *,
    pseudonymize(nullif(lower(trim(email)), '')) as email_hash,
    pseudonymize(nullif(regexp_replace(phone, '[^0-9+]', '', 'g'), '')) as phone_hash,
    pseudonymize(
        nullif(lower(concat_ws(' ', trim(first_name), trim(last_name))), '')
    ) as name_hash,
    coalesce(
        regexp_full_match(lower(trim(email)), '[^@\s]+@[^@\s]+\.[a-z]{2,}'), false
    ) as is_email_valid,
    year(try_cast(trim(birth_date) as date)) as birth_year
from _delivered
