-- Classic RFM quintile segmentation of the customers of $as_of_date (the baseline shown beside
-- the model's segments). Recency, frequency and monetary value are scored 1-5 by quintile among
-- the customers with an order (5 = most recent / most orders / most spend); customers without
-- one score 0 and form their own group. Grain: (as_of_date, customer_id).
with base as (
    select
        as_of_date,
        customer_id,
        recency_days,
        count_orders,
        lifetime_spend
    from customer_features
    where as_of_date = $as_of_date
),

buyers as (
    select
        customer_id,
        6 - ntile(5) over (order by recency_days, customer_id) as rfm_recency_score,
        ntile(5) over (order by count_orders, customer_id) as rfm_frequency_score,
        ntile(5) over (order by lifetime_spend, customer_id) as rfm_monetary_score
    from base
    where count_orders > 0
),

scored as (
    select
        base.as_of_date,
        base.customer_id,
        coalesce(buyers.rfm_recency_score, 0) as rfm_recency_score,
        coalesce(buyers.rfm_frequency_score, 0) as rfm_frequency_score,
        coalesce(buyers.rfm_monetary_score, 0) as rfm_monetary_score
    from base
    left join buyers using (customer_id)
)

select
    as_of_date,
    customer_id,
    rfm_recency_score,
    rfm_frequency_score,
    rfm_monetary_score,
    cast(rfm_recency_score as varchar)
    || cast(rfm_frequency_score as varchar)
    || cast(rfm_monetary_score as varchar) as rfm_score,
    case
        when rfm_frequency_score = 0 then 'No purchase yet'
        when rfm_recency_score >= 4 and rfm_frequency_score >= 4 and rfm_monetary_score >= 4
            then 'Champions'
        when rfm_recency_score >= 3 and rfm_frequency_score >= 4 then 'Loyal customers'
        when rfm_recency_score = 5 and rfm_frequency_score <= 2 then 'New customers'
        when rfm_recency_score >= 4 and rfm_frequency_score <= 3 then 'Potential loyalists'
        when rfm_recency_score <= 2 and rfm_frequency_score >= 4 then 'Cannot lose them'
        when rfm_recency_score <= 2 and rfm_frequency_score >= 3 then 'At risk'
        when rfm_recency_score <= 2 then 'Hibernating'
        else 'Need attention'
    end as rfm_segment
from scored
