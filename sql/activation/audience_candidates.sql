-- audience_candidates: the customers a campaign may select on $as_of_date (to be sent the
-- next day): the day's scores, uplift per channel (null without an uplift model) and segment,
-- only with marketing consent in their latest CRM version and not on the suppression list by
-- that day, nor withdrawn since (_withdrawn_consent, withdrawn_consent.sql). Grain: customer_id.
with

consented as (
    select customer_id
    from customer_features
    where as_of_date = $as_of_date and has_marketing_consent
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
anti join _withdrawn_consent as w on s.customer_id = w.customer_id
where s.as_of_date = $as_of_date
order by s.customer_id
