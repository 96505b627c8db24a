-- lift_of_day: per playbook campaign, the lift measured on $as_of_date over all its sends whose
-- window has ended (campaign_lift, scope campaign), in percentage points.
with

day_rows as (
    select * from campaign_lift where as_of_date = $as_of_date
),

sends as (
    select playbook_campaign, count(*) as sends
    from day_rows
    where scope = 'send_day'
    group by playbook_campaign
)

select
    l.playbook_campaign,
    s.sends,
    l.n_treated,
    l.n_holdout,
    100 * l.absolute_lift as lift_points,
    100 * l.absolute_lift_low as low_points,
    100 * l.absolute_lift_high as high_points,
    l.conclusion
from day_rows as l
inner join sends as s on l.playbook_campaign = s.playbook_campaign
where l.scope = 'campaign'
order by l.playbook_campaign
