-- score_context: what customer_scores shows beside the models' scores on $as_of_date: the
-- expected lifetime value and BG/NBD probability alive (customer_clv) and the segment
-- (customer_segments) of each customer.
select
    s.customer_id,
    c.clv as expected_clv,
    c.prob_alive,
    s.segment_id,
    s.segment_name
from customer_segments as s
left join customer_clv as c
    on s.customer_id = c.customer_id and c.as_of_date = $as_of_date
where s.as_of_date = $as_of_date
