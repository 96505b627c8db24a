-- audience_counts: per playbook campaign on $as_of_date, its channel and its treated and
-- holdout customers.
select
    playbook_campaign,
    any_value(channel) as channel,
    count(*) filter (where not is_holdout) as treated,
    count(*) filter (where is_holdout) as holdout
from audiences
where as_of_date = $as_of_date
group by playbook_campaign
order by playbook_campaign
