-- measured_sends: the campaign sends whose lift campaign_lift measured on $as_of_date.
select playbook_campaign, campaign_id, send_date, measurement_window_days, n_treated, n_holdout
from campaign_lift
where as_of_date = $as_of_date and scope = 'send_day'
order by playbook_campaign, send_date
