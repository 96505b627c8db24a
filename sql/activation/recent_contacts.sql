-- recent_contacts: every campaign message a customer received or is due to receive with a send
-- day from $start_date up to $as_of_date: this pipeline's earlier audiences (treated, sent the
-- day after their as_of_date) and the delivery tool's send log (stg_campaign_sends, as known on
-- $as_of_date; control-group rows were never sent), each message once.
-- Grain: (customer_id, campaign_id).
with

ours as (
    select customer_id, campaign_id, send_date
    from audiences
    where
        as_of_date < $as_of_date
        and send_date between $start_date and $as_of_date
        and not is_holdout
),

logged as (
    select customer_id, campaign_id, cast(sent_at as date) as send_date
    from stg_campaign_sends
    where
        arrival_date <= $as_of_date
        and not is_control_group
        and cast(sent_at as date) between $start_date and $as_of_date
)

select customer_id, campaign_id, min(send_date) as send_date
from (
    select * from ours
    union all
    select * from logged
)
group by customer_id, campaign_id
