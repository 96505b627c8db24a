-- export_rows: the treated customers of $as_of_date's audiences as the audience export carries
-- them: a pseudonymous key (keyed hash of the customer id) instead of the id, no contact field;
-- holdout customers never leave. Grain: (campaign_id, customer_key).
select
    campaign_id,
    playbook_campaign,
    channel,
    send_date,
    pseudonymize(customer_id) as customer_key,
    segment_name,
    rank_score
from audiences
where as_of_date = $as_of_date and not is_holdout
order by campaign_id, customer_key
