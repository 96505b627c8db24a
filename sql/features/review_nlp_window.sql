-- The scored reviews that arrived between $start_date and $end_date (for run metadata).
select sentiment_compound, rating, topic_id
from review_nlp
where arrival_date between $start_date and $end_date
