-- uplift_rankings: every customer scored on $as_of_date with the rankings a campaign could
-- target by: uplift per channel (uplift_scores), response propensity per channel and purchase
-- propensity (customer_scores). Grain: customer_id.
select
    s.customer_id,
    u.uplift_email,
    u.uplift_sms,
    u.uplift_push,
    s.response_email,
    s.response_sms,
    s.response_push,
    s.purchase_propensity
from customer_scores as s
inner join uplift_scores as u
    on s.customer_id = u.customer_id and u.as_of_date = $as_of_date
where s.as_of_date = $as_of_date
order by s.customer_id
