-- stg_campaign_sends: one row per customer a campaign selected, deduplicated within its arrival
-- day: a message sent, or a control-group row (is_control_group: the campaign's random holdout,
-- selected but not sent; readers that mean messages sent leave these out). Grain:
-- (arrival_date, campaign_id, customer_id). Engagement flags are made consistent with the
-- funnel (a click implies an open, a conversion implies a click; a control row did none).
-- Rows that break a row rule (bad key, unknown customer, bad timestamp or channel, unknown
-- control flag) go to quarantine.
with

source as (
    select * from raw_campaign_sends
    where _partition_date between $start_date and $end_date
),

known_customers as (
    select customer_id, min(arrival_date) as first_arrival_date
    from stg_crm_customers
    where arrival_date <= $end_date
    group by customer_id
),

typed as (
    select
        -- ids
        nullif(trim(campaign_id), '') as campaign_id,
        nullif(trim(customer_id), '') as customer_id,

        -- text
        nullif(lower(trim(channel)), '') as channel,

        -- booleans: a holdout row was not sent, so it was never opened, clicked or converted
        control_group as is_control_group,
        not coalesce(control_group, false) and (
            coalesce(opened, false) or coalesce(clicked, false) or coalesce(converted, false)
        ) as is_opened,
        not coalesce(control_group, false)
        and (coalesce(clicked, false) or coalesce(converted, false)) as is_clicked,
        not coalesce(control_group, false) and coalesce(converted, false) as is_converted,

        -- timestamps: UTC wall time by the one rule (sql/ingest/utc_timestamp.sql)
        utc_timestamp(sent_at) as sent_at,

        -- lineage
        source._partition_date as arrival_date,
        source._source_file,
        source._record_number,
        hash(struct_pack(
            source.campaign_id, source.customer_id, source.sent_at, source.channel,
            source.opened, source.clicked, source.converted, source.control_group
        )) as _content_hash
    from source
),

checked as (
    select
        t.*,
        cast(t.sent_at as date) as sent_date,
        case
            when t.campaign_id is null or t.customer_id is null then 'null_key'
            when k.customer_id is null then 'unknown_customer'
            when t.sent_at is null then 'invalid_timestamp'
            when cast(t.sent_at as date) > t.arrival_date then 'future_timestamp'
            when cast(t.sent_at as date) < t.arrival_date - $max_lateness_days then 'too_late'
            when t.channel not in ('email', 'sms', 'push') then 'unknown_channel'
            when t.is_control_group is null then 'unknown_control_group'
        end as _rule
    from typed as t
    left join known_customers as k
        on t.customer_id = k.customer_id and t.arrival_date >= k.first_arrival_date
),

explained as (
    select
        *,
        case _rule
            when 'null_key' then 'campaign_id or customer_id is empty'
            when 'unknown_customer' then 'customer ' || customer_id || ' is not in the CRM'
            when 'invalid_timestamp' then 'sent_at is empty'
            when 'future_timestamp'
                then 'sent on ' || sent_date || ', after arrival on ' || arrival_date
            when 'too_late'
                then 'sent on ' || sent_date || ', more than ' || $max_lateness_days
                    || ' days before arrival on ' || arrival_date
            when 'unknown_channel'
                then 'channel is not email, sms or push: ' || channel
            when 'unknown_control_group'
                then 'control_group is empty: whether the message was sent is unknown'
        end as _reason
    from checked
),

deduplicated as (
    -- The last delivery of a key wins; an exact repeat is dropped, a conflicting earlier
    -- version is quarantined. Windows stay within the arrival day.
    select
        * exclude (_rule, _reason),
        case
            when _rule is not null then _rule
            when _keep_rank > 1 and _content_hash <> _kept_hash then 'duplicate_key'
        end as _rule,
        case
            when _rule is not null then _reason
            when _keep_rank > 1 and _content_hash <> _kept_hash
                then 'a later row of the same file has the same campaign_id and customer_id'
        end as _reason,
        _rule is null and _keep_rank > 1 and _content_hash = _kept_hash as _is_redundant
    from (
        select
            *,
            row_number() over w as _keep_rank,
            first_value(_content_hash) over w as _kept_hash
        from explained
        window w as (
            partition by arrival_date, campaign_id, customer_id, _rule is null
            order by _record_number desc
        )
    )
)

select
    campaign_id,
    customer_id,
    channel,
    is_control_group,
    is_opened,
    is_clicked,
    is_converted,
    sent_at,
    sent_date,
    sent_date < arrival_date as is_late,
    arrival_date,
    _source_file,
    _record_number,
    _rule,
    _reason,
    _is_redundant
from deduplicated
