-- scoring_rows: the model inputs of every customer on $as_of_date (model_inputs.sql), sorted by
-- customer: the rows customer_scores applies the champions to.
select * from model_inputs($as_of_date)
order by customer_id
