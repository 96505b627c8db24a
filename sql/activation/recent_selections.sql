-- recent_selections: the last send day on which each playbook campaign selected each customer
-- (treated or holdout), for selections with a send day from $start_date, made before
-- $as_of_date. Grain: (playbook_campaign, customer_id).
select playbook_campaign, customer_id, max(send_date) as last_send_date
from audiences
where as_of_date < $as_of_date and send_date >= $start_date
group by playbook_campaign, customer_id
