-- training_rows: the customers of customer_features on $cutoff_date (a sample: those whose
-- seeded hash falls under $sample_per_million), each with their features as of that day and
-- what happened after it: the days from the cut-off to their next completed order (an order
-- with a completed line) within ($cutoff_date, $label_end_date], null when there was none.
-- Orders count as they were known on $as_of_date (the latest delivered version of each line
-- that arrived by then), so a label never reads past the training day and a feature never
-- reads past the cut-off (customer_features is a point-in-time snapshot).
with

features as (
    -- the model inputs of the cut-off (model_inputs.sql)
    select * from model_inputs($cutoff_date)
    where hash(customer_id, $seed) % 1000000 < $sample_per_million
),

later_lines as (
    select customer_id, order_id, order_date, order_status
    from stg_orders
    where order_date > $cutoff_date
        and order_date <= $label_end_date
        and arrival_date <= $as_of_date
        and order_status is not null
        and quantity > 0
        and unit_price > 0
    qualify row_number() over (
        partition by order_id, line_number order by arrival_date desc
    ) = 1
),

next_orders as (
    select customer_id, min(order_date) as next_order_date
    from later_lines
    where order_status = 'completed'
    group by customer_id
)

select
    features.*,
    next_orders.next_order_date - features.as_of_date as days_to_next_order
from features
left join next_orders using (customer_id)
