-- order_history: per customer, the orders they placed (any status: the generator's customers
-- may drop out after any order) that happened and arrived by $as_of_date, as the oracle of the
-- predictive evaluation needs them: how many, the last order day and the orders placed on it.
with

orders as (
    select customer_id, order_id, min(order_date) as order_date
    from stg_orders
    where order_date <= $as_of_date and arrival_date <= $as_of_date
    group by customer_id, order_id
),

days as (
    select customer_id, order_date, count(*) as orders
    from orders
    group by customer_id, order_date
)

select
    customer_id,
    sum(orders) as orders_placed,
    max(order_date) as last_order_date,
    arg_max(orders, order_date) as orders_on_last_day
from days
group by customer_id
