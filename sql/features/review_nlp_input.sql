-- review_nlp_input: the reviews that arrived on $as_of_date, with their text for scoring
-- (the text is not copied into review_nlp).
-- is_known_customer: the CRM had delivered the author by the arrival day.
select
    r.review_id, r.customer_id, r.product_id, r.rating, r.review_text, r.review_date,
    r.customer_id in (
        select customer_id from stg_crm_customers where arrival_date <= $as_of_date
    ) as is_known_customer,
    r.arrival_date
from stg_reviews as r
where r.arrival_date = $as_of_date and r.review_id is not null
order by r.review_id
