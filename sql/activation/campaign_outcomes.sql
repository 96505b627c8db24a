-- campaign_outcomes: per campaign send (campaign_id) and group, the customers selected on a
-- send day from $start_date whose measurement window (send day and the days after it) has
-- ended by $as_of_date, and what they did in that window: customers with at least one order
-- not cancelled, orders, net revenue of completed lines and its sum of squares (orders known
-- on $as_of_date). Beside them, the same sends grouped by customer over the whole playbook
-- campaign and group (a customer stays in one group of a campaign on every send, so their
-- sends are not independent): customers and the sums over customers of sends², converted
-- sends², converted sends x sends, revenue² and revenue x sends, for variances clustered by
-- customer. Grain: (campaign_id, is_holdout).
with

finished as (
    select
        playbook_campaign, campaign_id, send_date, measurement_window_days, is_holdout, customer_id
    from audiences
    where
        send_date >= $start_date
        and send_date + measurement_window_days - 1 <= $as_of_date
),

order_lines as (
    select
        customer_id,
        order_id,
        order_date,
        order_status,
        case
            when order_status = 'completed' then quantity * unit_price - discount_amount
            else 0
        end as net_revenue
    from stg_orders
    where arrival_date <= $as_of_date and order_date >= $start_date
),

per_customer as (
    select
        f.playbook_campaign,
        f.campaign_id,
        f.send_date,
        f.measurement_window_days,
        f.is_holdout,
        f.customer_id,
        count(distinct o.order_id) filter (where o.order_status <> 'cancelled') as orders,
        cast(coalesce(sum(o.net_revenue), 0) as double) as revenue
    from finished as f
    left join order_lines as o
        on
            f.customer_id = o.customer_id
            and o.order_date between f.send_date and f.send_date + f.measurement_window_days - 1
    group by all
),

per_send as (
    select
        playbook_campaign,
        campaign_id,
        send_date,
        measurement_window_days,
        is_holdout,
        count(*) as customers,
        count(*) filter (where orders > 0) as converted,
        sum(orders) as orders,
        sum(revenue) as revenue,
        sum(revenue * revenue) as revenue_squared
    from per_customer
    group by all
),

per_campaign_customer as (
    select
        playbook_campaign,
        is_holdout,
        customer_id,
        count(*) as sends,
        count(*) filter (where orders > 0) as converted,
        sum(revenue) as revenue
    from per_customer
    group by all
),

clusters as (
    select
        playbook_campaign,
        is_holdout,
        count(*) as cluster_customers,
        sum(sends * sends) as cluster_sends_squared,
        sum(converted * converted) as cluster_converted_squared,
        sum(converted * sends) as cluster_converted_sends,
        sum(revenue * revenue) as cluster_revenue_squared,
        sum(revenue * sends) as cluster_revenue_sends
    from per_campaign_customer
    group by all
)

select per_send.*, clusters.* exclude (playbook_campaign, is_holdout)
from per_send
inner join clusters using (playbook_campaign, is_holdout)
order by playbook_campaign, send_date, is_holdout
