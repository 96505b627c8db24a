-- clv_summary: per customer with a completed order on or before $as_of_date, the BG/NBD and
-- Gamma-Gamma inputs (days): frequency = purchase days - 1, recency = last - first purchase day,
-- T = as_of_date - first purchase day, monetary_value = mean spend of the repeat purchase days.
-- Same point-in-time filters as customer_features.
with

order_lines as (
    select customer_id, order_date, order_status, line_amount
    from stg_orders
    where arrival_date <= $as_of_date
        and order_date <= $as_of_date
        and customer_id in (
            select customer_id from stg_crm_customers where arrival_date <= $as_of_date
        )
        and order_status is not null
        and quantity > 0
        and unit_price > 0
    qualify row_number() over (
        partition by order_id, line_number order by arrival_date desc
    ) = 1
),

purchase_days as (
    select customer_id, order_date, cast(sum(line_amount) as double) as amount
    from order_lines
    where order_status = 'completed'
    group by customer_id, order_date
),

ranked as (
    select *, row_number() over (partition by customer_id order by order_date) as n
    from purchase_days
)

select
    customer_id,
    count(*) - 1 as frequency,
    cast(max(order_date) - min(order_date) as double) as recency,
    cast(cast($as_of_date as date) - min(order_date) as double) as "T",
    coalesce(avg(amount) filter (where n > 1), 0.0) as monetary_value
from ranked
group by customer_id
order by customer_id
