-- The customers whose vault records carry the keyed hash $email_hash (an erasure request names
-- an e-mail address; its hash finds the customer without decrypting anything).
select distinct customer_id
from vault.crm_personal
where email_hash = $email_hash
order by customer_id
