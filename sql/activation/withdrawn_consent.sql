-- _withdrawn_consent: the customers whose latest CRM version the warehouse holds, of any arrival
-- day, has no marketing consent. Audiences and exports leave them out on every day, so a re-run
-- of a day before the withdrawal does not select or export them again (on the day itself the
-- day's features already say so). Grain: customer_id.
create or replace temp table _withdrawn_consent as
select customer_id
from stg_crm_customers
qualify
    row_number() over (partition by customer_id order by arrival_date desc, updated_at desc) = 1
    and has_marketing_consent is not true
