-- score_context: what customer_scores shows beside the models' scores on $as_of_date: the
-- expected lifetime value and BG/NBD probability alive (customer_clv) and the segment
-- (customer_segments) of each customer. Either may be missing: a day before the first
-- segmentation model has no segments, and its customers keep their lifetime value.
with clv as (
    select customer_id, clv, prob_alive
    from customer_clv
    where as_of_date = $as_of_date
),

segments as (
    select customer_id, segment_id, segment_name
    from customer_segments
    where as_of_date = $as_of_date
)

select
    customer_id,
    clv.clv as expected_clv,
    clv.prob_alive,
    segments.segment_id,
    segments.segment_name
from clv
full outer join segments using (customer_id)
