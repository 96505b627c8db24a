-- response_rows: the campaign messages sent to the customers of customer_features on
-- $cutoff_date (a sample: those whose seeded hash falls under $sample_per_million) within
-- ($cutoff_date, $label_end_date], one row per send: the customer's model inputs as of the
-- cut-off (as in training_rows.sql), the send's channel (sends without one, and the campaigns'
-- control-group rows, which were never sent, left out) and day,
-- and whether it converted (the campaign system's attributed conversion on the send, its
-- latest version known on $as_of_date). Beside them, for the last-response-rate baseline, the
-- customer's sends and conversions on that channel that happened and arrived by the cut-off.
-- Features never read past the cut-off, labels never past $as_of_date.
with

features as (
    -- the model inputs of the cut-off (model_inputs.sql)
    select * from model_inputs($cutoff_date)
    where hash(customer_id, $seed) % 1000000 < $sample_per_million
),

later_sends as (
    select customer_id, campaign_id, channel, sent_date, is_converted
    from stg_campaign_sends
    where sent_date > $cutoff_date
        and sent_date <= $label_end_date
        and arrival_date <= $as_of_date
        and channel is not null
    qualify
        row_number() over (
            partition by campaign_id, customer_id order by arrival_date desc
        ) = 1
        and not is_control_group
),

earlier_sends as (
    select customer_id, channel, is_converted
    from stg_campaign_sends
    where sent_date <= $cutoff_date
        and arrival_date <= $cutoff_date
    qualify
        row_number() over (
            partition by campaign_id, customer_id order by arrival_date desc
        ) = 1
        and not is_control_group
),

history as (
    select
        customer_id,
        channel,
        count(*) as sends,
        count(*) filter (where is_converted) as conversions
    from earlier_sends
    group by customer_id, channel
)

select
    features.*,
    later_sends.channel,
    later_sends.sent_date,
    later_sends.is_converted as _converted,
    coalesce(history.sends, 0) as _channel_sends_before,
    coalesce(history.conversions, 0) as _channel_conversions_before
from features
inner join later_sends using (customer_id)
left join history
    on features.customer_id = history.customer_id and later_sends.channel = history.channel
order by features.customer_id, later_sends.sent_date, later_sends.campaign_id
