-- clv_baseline: the BG/NBD baselines of the customers of $as_of_date (customer_clv covers
-- customers with a purchase): probability alive and expected purchases over 90 days for
-- horizons over 45 days, over 30 days otherwise.
select
    customer_id,
    prob_alive,
    case
        when $horizon_days > 45 then expected_purchases_90d else expected_purchases_30d
    end as expected_purchases
from customer_clv
where as_of_date = $as_of_date
