-- review_topic_training: review texts that arrived between $train_start and $fitted_on and were
-- written on or before $fitted_on (latest delivery of each review), to fit the topic model.
select review_text
from stg_reviews
where arrival_date between $train_start and $fitted_on
    and review_date <= $fitted_on
    and review_text is not null
qualify row_number() over (partition by review_id order by arrival_date desc) = 1
order by review_id
