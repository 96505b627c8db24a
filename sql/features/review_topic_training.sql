-- review_topic_training: review texts that arrived between $start_date and $end_date and were
-- written on or before $end_date (latest delivery of each review), to fit the topic model.
select review_text
from stg_reviews
where arrival_date between $start_date and $end_date
    and review_date <= $end_date
    and review_text is not null
qualify row_number() over (partition by review_id order by arrival_date desc) = 1
order by review_id
