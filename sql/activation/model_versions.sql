-- model_versions: the champion versions that scored the customers of $as_of_date (one row; none
-- before the first scores), named in every export's manifest.
select
    max(churn_model_version) as churn,
    max(purchase_model_version) as purchase,
    max(response_model_version) as response,
    max(next_order_model_version) as next_order
from customer_scores
where as_of_date = $as_of_date
having count(*) > 0
