-- The customer_features of $as_of_date, sorted by customer (the rows a model is applied to).
select * from customer_features where as_of_date = $as_of_date order by customer_id
