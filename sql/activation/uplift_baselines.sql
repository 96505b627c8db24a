-- uplift_baselines: the scores the uplift model is compared with, per customer on
-- $as_of_date (a validation cut-off): the response propensity on each channel and the purchase
-- propensity of customer_scores. Grain: customer_id.
select customer_id, response_email, response_sms, response_push, purchase_propensity
from customer_scores
where as_of_date = $as_of_date
