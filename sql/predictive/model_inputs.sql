-- model_inputs(day): what the predictive models read about each customer on a day, in training
-- (training_rows.sql, response_rows.sql: the cut-off) and scoring (scoring_rows.sql): the
-- customer's customer_features row and the BG/NBD figures of customer_clv that day (null
-- before a first purchase). A table macro of the connection (training.register_model_inputs).
create or replace temp macro model_inputs(day) as table
select
    f.*,
    c.prob_alive as bgnbd_prob_alive,
    c.expected_purchases_30d as bgnbd_expected_purchases_30d,
    c.expected_purchases_90d as bgnbd_expected_purchases_90d
from customer_features as f
left join customer_clv as c
    on f.customer_id = c.customer_id and c.as_of_date = day
where f.as_of_date = day
