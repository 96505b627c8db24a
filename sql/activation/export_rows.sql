-- export_rows: the treated customers of $as_of_date's audiences as the audience export carries
-- them: a pseudonymous key (keyed hash of the customer id) instead of the id, no contact field,
-- the customer's top three recommended products of the day ('|'-separated); holdout customers
-- never leave.
-- Grain: (campaign_id, customer_key).
with

top_products as (
    select customer_id, string_agg(product_id, '|' order by rank) as recommended_products
    from recommendations
    where as_of_date = $as_of_date and rank <= 3
    group by customer_id
)

select
    a.campaign_id,
    a.playbook_campaign,
    a.channel,
    a.send_date,
    pseudonymize(a.customer_id) as customer_key,
    a.segment_name,
    a.rank_score,
    p.recommended_products
from audiences as a
left join top_products as p on a.customer_id = p.customer_id
where a.as_of_date = $as_of_date and not a.is_holdout
order by a.campaign_id, customer_key
