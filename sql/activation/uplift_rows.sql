-- uplift_rows: the campaign sends of ($cutoff_date, $send_end_date] to the customers of
-- customer_features on $cutoff_date (a sample: those whose seeded hash falls under
-- $sample_per_million), one row per send and customer, control-group rows included: the
-- customer's model inputs as of the cut-off (model_inputs.sql, as the predictive models read
-- them), the send's channel and day, whether it was sent (false: the campaign's random control
-- group, selected but never sent) and whether the customer placed an order not cancelled in
-- the measurement window [sent_date, sent_date + $window_days - 1] (the outcome campaign_lift
-- measures), as known on $as_of_date. Only sends whose window has ended by $as_of_date.
-- Features never read past the cut-off, outcomes never past $as_of_date.
with

features as (
    select * from model_inputs($cutoff_date)
    where hash(customer_id, $seed) % 1000000 < $sample_per_million
),

sends as (
    select customer_id, campaign_id, channel, sent_date, not is_control_group as is_treated
    from stg_campaign_sends
    where sent_date > $cutoff_date
        and sent_date <= $send_end_date
        and sent_date + $window_days - 1 <= $as_of_date
        and arrival_date <= $as_of_date
        and channel is not null
    qualify
        row_number() over (
            partition by campaign_id, customer_id order by arrival_date desc
        ) = 1
),

orders as (
    select distinct customer_id, order_date
    from stg_orders
    where order_date > $cutoff_date
        and order_date <= $as_of_date
        and arrival_date <= $as_of_date
        and order_status <> 'cancelled'
),

outcomes as (
    select
        sends.customer_id,
        sends.campaign_id,
        sends.channel,
        sends.sent_date,
        sends.is_treated,
        count(orders.order_date) > 0 as is_converted
    from sends
    left join orders
        on
            sends.customer_id = orders.customer_id
            and orders.order_date between sends.sent_date
            and sends.sent_date + $window_days - 1
    group by all
)

select
    features.*,
    outcomes.campaign_id as _campaign_id,
    outcomes.channel,
    outcomes.sent_date,
    outcomes.is_treated as _treated,
    outcomes.is_converted as _converted
from features
inner join outcomes using (customer_id)
order by features.customer_id, outcomes.sent_date, outcomes.campaign_id
