"""Column descriptions of the predictive tables (Dagster column schema, data dictionary)."""

PREDICTIVE_MODELS = {
    "as_of_date": "The day.",
    "target": "churn, purchase, response or next_order.",
    "horizon_days": "Days after a cut-off the label looks at.",
    "champion_version": "Model-store version scoring customers this day (null: none yet).",
    "challenger_version": "Version trained this day (refit days with enough history).",
    "promoted": "The challenger beat the champion and became champion this day.",
    "decision": "Why: the two scores compared, or why no challenger was trained.",
    "validation_cutoff": "Cut-off day both were measured on (its labels end on this day).",
    "metric": "The champion metric (config champion_metric).",
    "challenger_score": "The challenger's champion metric on the validation cut-off.",
    "champion_score": "The previous champion's, on the same rows (null: no champion).",
}

CUSTOMER_SCORES = {
    "as_of_date": "The day scored (features as of this day).",
    "customer_id": "Pseudonymous customer id.",
    "churn_risk": "Calibrated probability of no completed order in the churn horizon.",
    "churn_risk_decile": "1 (lowest risk) to 10 (highest) among the day's customers.",
    "churn_reasons": "Up to three inputs that raise this customer's churn risk the most: "
    "feature, the customer's value, and its contribution to the model's log-odds (exact "
    "Shapley values). Filled for the riskiest reasons_top_share (config, default the top "
    "decile), null for the others.",
    "purchase_propensity": "Calibrated probability of a completed order in the purchase horizon.",
    "expected_next_order_date": "Day by which the next-order model's probability of a completed "
    "order reaches one half (null: not within next_order_horizon_days, or no model yet).",
    "expected_days_to_next_order": "The same as days after as_of_date (interpolated).",
    "response_email": "Calibrated probability that an e-mail campaign sent to the customer "
    "converts (response model).",
    "response_sms": "The same for an SMS campaign.",
    "response_push": "The same for a push notification.",
    "expected_clv": "Expected discounted spend over the CLV horizon (customer_clv; null: "
    "no purchase yet).",
    "prob_alive": "BG/NBD probability the customer is still active (customer_clv).",
    "segment_id": "Segment of the day (customer_segments).",
    "segment_name": "Its name.",
    "churn_model_version": "Churn champion used.",
    "purchase_model_version": "Purchase champion used.",
    "response_model_version": "Response champion used.",
    "next_order_model_version": "Next-order champion used.",
}
