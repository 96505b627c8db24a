-- scores_of_day: the customer_scores of $as_of_date (the day before a run's last day, for the
-- shift of the score distributions).
select
    churn_risk,
    purchase_propensity,
    expected_days_to_next_order,
    response_email,
    response_sms,
    response_push,
    expected_clv
from customer_scores
where as_of_date = $as_of_date
