-- audience_candidates: the customers a campaign may select on $as_of_date (to be sent the
-- next day): the day's scores, uplift per channel (null without an uplift model) and segment,
-- only with marketing consent in their latest CRM version and not on the suppression list by
-- that day, nor withdrawn since. Grain: customer_id.
with

consented as (
    select customer_id
    from customer_features
    where as_of_date = $as_of_date and has_marketing_consent
),

withdrawn as (
    -- customers whose latest CRM version the warehouse holds, of any arrival day, has no
    -- consent: a re-run of a day before the withdrawal does not select them again (on the day
    -- itself the day's features already say so)
    select customer_id
    from stg_crm_customers
    qualify
        row_number() over (partition by customer_id order by arrival_date desc, updated_at desc)
        = 1
        and has_marketing_consent is not true
),

suppressed as (
    select distinct customer_id
    from marketing_suppressions
    where cast(suppressed_at as date) <= $as_of_date
)

select
    s.*,
    u.uplift_email,
    u.uplift_sms,
    u.uplift_push
from customer_scores as s
left join uplift_scores as u
    on s.customer_id = u.customer_id and u.as_of_date = $as_of_date
semi join consented as c on s.customer_id = c.customer_id
anti join suppressed as x on s.customer_id = x.customer_id
anti join withdrawn as w on s.customer_id = w.customer_id
where s.as_of_date = $as_of_date
order by s.customer_id
