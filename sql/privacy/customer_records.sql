-- Where the vault records of the customers in the registered frame _wanted_customers are (their
-- lineage), for records_by_lineage.sql to open.
select r.arrival_date, r.source_file, r.record_number
from vault.crm_personal as r
semi join _wanted_customers as w on r.customer_id = w.customer_id
