-- Products bought per customer with order_date in [$start_date, $end_date], as the warehouse
-- knew them on $end_date: one row per (customer_id, product_id) with the number of orders and
-- units and the last order day. A line's latest delivery wins; cancelled lines were not bought
-- (returned ones were, and show the choice as well).
with

lines as (
    select order_id, customer_id, product_id, order_status, quantity, order_date
    from stg_orders
    where order_date between $start_date and $end_date
        and arrival_date <= $end_date
        and product_id is not null
    qualify row_number() over (
        partition by order_id, line_number order by arrival_date desc
    ) = 1
)

select
    customer_id,
    product_id,
    count(distinct order_id) as orders,
    sum(quantity) as units,
    max(order_date) as last_order_date
from lines
where order_status in ('completed', 'returned')
group by customer_id, product_id
order by customer_id, product_id
