"""Column descriptions of the feature tables: meaning, formula and source of every column.

One source of truth for the Dagster column schema (``dagster/column_schema``) and for
``docs/data_dictionary.md`` (written by :func:`data_dictionary_markdown`).
"""

from __future__ import annotations

# States of customer_features older than this many days before the latest computed day are
# deleted; recomputing an older day without the state of the day before computes it in full.
STATE_KEEP_DAYS = 7

_ORD = "stg_orders (completed lines, known customers, quantity > 0, unit_price > 0)"
_WEB = "stg_web_events (sessions of the logged-in customer)"
_CAMP = "stg_campaign_sends"
_REV = "review_nlp"

CUSTOMER_FEATURES: dict[str, str] = {
    "as_of_date": "Day of the snapshot: every value uses rows with real date and arrival date "
    "on or before it. Partition column.",
    "customer_id": "Customer id (pseudonymous key). Source: stg_crm_customers.",
    "tenure_days": "Days since sign-up: as_of_date - signup_date, at least 0. "
    "Source: stg_crm_customers (latest version delivered by as_of_date).",
    "observed_days": "Days the customer could be observed buying: as_of_date - max(signup_date, "
    "first order day in the warehouse) + 1, at least 1. Denominator of the per-month rates.",
    "has_marketing_consent": "Marketing consent in the latest CRM version. "
    "Source: stg_crm_customers.",
    "age_band": "Age band of the age in the year of as_of_date (year(as_of_date) - birth_year): "
    "'<25', '25-34', '35-44', '45-54', '55-64' or '65+'; null when the birth year is unknown "
    "(or after that year). Descriptive (segment profiles), not a segmentation feature. "
    "Source: stg_crm_customers.birth_year (latest version delivered by as_of_date).",
    "gender": "Gender in the latest CRM version: 'F', 'M', 'X' or null when unknown. "
    "Descriptive (segment profiles), not a segmentation feature. Source: stg_crm_customers.",
    "country": "Country of the latest CRM version, ISO 3166-1 alpha-2 code; null when unknown. "
    "Descriptive (segment profiles), not a segmentation feature. "
    "Source: stg_crm_customers.country_code.",
    "recency_days": "Days since the last completed order: as_of_date - last_order_date; "
    f"null without orders. Source: {_ORD}.",
    "first_order_date": f"Day of the first completed order. Source: {_ORD}.",
    "last_order_date": f"Day of the last completed order. Source: {_ORD}.",
    "count_orders": f"Orders with at least one completed line (frequency). Source: {_ORD}.",
    "count_repeat_orders": "Orders after the first: max(count_orders - 1, 0).",
    "count_orders_placed": "Orders placed, whatever their status (completed, returned, "
    "cancelled). Source: stg_orders.",
    "count_items": f"Units bought on completed lines: sum(quantity). Source: {_ORD}.",
    "lifetime_spend": "Total spend: sum(line_amount) of completed lines (after discounts, "
    f"returned and cancelled lines excluded). Source: {_ORD}.",
    "avg_order_value": "Average order value: lifetime_spend / count_orders; null without orders.",
    "max_order_value": "Largest completed spend of one order.",
    "purchase_rate_per_month": "Orders per month: count_orders * 30.4375 / observed_days.",
    "avg_spend_per_month": "Spend per month: lifetime_spend * 30.4375 / observed_days.",
    "avg_days_between_orders": "Mean days between consecutive purchase days (orders on the "
    "same day count once); null with fewer than two purchase days.",
    "std_days_between_orders": "Sample standard deviation of the days between consecutive "
    "purchase days; null with fewer than three purchase days.",
    "return_rate": "Share of order lines returned: returned lines / lines placed. "
    "Source: stg_orders.",
    "cancel_rate": "Share of order lines cancelled: cancelled lines / lines placed. "
    "Source: stg_orders.",
    "discount_share": "Share of gross spend given as discount: sum(discount_amount) / "
    f"sum(quantity * unit_price) over completed lines. Source: {_ORD}.",
    "share_orders_discounted": "Share of completed orders with a discount on any line.",
    **{
        f"share_category_{c}": f"Share of completed gross spend (quantity * unit_price) in "
        f"category '{c}'. Source: {_ORD}."
        for c in ("electronics", "fashion", "home", "beauty", "sports", "toys", "grocery", "books")
    },
    "share_category_other": "Share of completed gross spend in any other or a missing category.",
    **{
        f"share_channel_{c}": f"Share of completed orders placed through channel '{c}'. "
        f"Source: {_ORD}."
        for c in ("web", "app", "store", "marketplace")
    },
    "share_channel_other": "Share of completed orders with any other or a missing channel.",
    "count_sessions_30d": "Web sessions started in the 30 days ending on as_of_date. "
    f"Source: {_WEB}.",
    "count_sessions_90d": "Web sessions started in the 90 days ending on as_of_date. "
    f"Source: {_WEB}.",
    "count_product_views_30d": "product_view events in sessions of the last 30 days.",
    "count_product_views_90d": "product_view events in sessions of the last 90 days.",
    "count_searches_30d": "search events in sessions of the last 30 days.",
    "count_searches_90d": "search events in sessions of the last 90 days.",
    "count_add_to_cart_30d": "add_to_cart events in sessions of the last 30 days.",
    "count_add_to_cart_90d": "add_to_cart events in sessions of the last 90 days.",
    "cart_abandonment_rate_30d": "Sessions of the last 30 days with an add_to_cart but no "
    "checkout / sessions with an add_to_cart; null without such sessions.",
    "cart_abandonment_rate_90d": "As cart_abandonment_rate_30d over the last 90 days.",
    "count_campaigns_received": (
        f"Campaign messages sent to the customer (control-group rows, never sent, left out). "
        f"Source: {_CAMP}."
    ),
    "campaign_open_rate": "Opened sends / sends; null without sends.",
    "campaign_click_rate": "Clicked sends / sends; null without sends.",
    "campaign_conversion_rate": "Converted sends / sends; null without sends.",
    "count_reviews": f"Reviews written. Source: {_REV} (stg_reviews).",
    "avg_review_rating": "Mean star rating (1-5) of the reviews; null without reviews.",
    "avg_review_sentiment": "Mean VADER compound sentiment (-1..1) of the review texts. "
    f"Source: {_REV}.",
    "dominant_review_topic": "Most frequent topic label of the reviews (ties: alphabetically "
    f"first). Source: {_REV}.",
}

REVIEW_NLP: dict[str, str] = {
    "review_id": "Review id. Source: stg_reviews.",
    "customer_id": "Author (pseudonymous key). Source: stg_reviews.",
    "product_id": "Reviewed product. Source: stg_reviews.",
    "rating": "Star rating 1-5. Source: stg_reviews.",
    "review_date": "Real (UTC) day of the review. Source: stg_reviews.",
    "is_known_customer": "Whether the CRM had delivered the author by the arrival day.",
    "sentiment_compound": "VADER compound score of the text, -1 (negative) .. 1 (positive).",
    "sentiment_label": "positive (compound >= 0.05), negative (<= -0.05) or neutral.",
    "topic_id": "Index of the strongest NMF topic of the text; null if no topic term occurs.",
    "topic_label": "Label of that topic: its top TF-IDF terms joined by '/'.",
    "topic_weight": "NMF weight of that topic in the text.",
    "topic_model_fitted_on": "Day the applied topic model was fitted (on or before arrival).",
    "arrival_date": "Day the review arrived. Partition column.",
}

REVIEW_TOPIC_MODEL: dict[str, str] = {
    "as_of_date": "Day the model applies to. Partition column.",
    "model_version": "Version of the topic model in the model store (table model_registry); "
    "null when too few reviews to fit.",
    "fitted_on": "Refit day: the latest day on or before as_of_date on the refit schedule.",
    "train_start": "First arrival day of the training window.",
    "n_reviews": "Review texts the model was fitted on.",
    "n_topics": "NMF components.",
    "topic_labels": "Label of each topic: its top terms joined by '/'.",
}

CLV_MODEL: dict[str, str] = {
    "as_of_date": "Day the parameters apply to. Partition column.",
    "model_version": "Version of the fit in the model store (table model_registry); null when "
    "too few buyers to fit.",
    "fitted_on": "Calibration end: the latest refit day on or before as_of_date.",
    "n_customers": "Customers with at least one purchase in calibration (BG/NBD fit).",
    "bgnbd_r": "BG/NBD shape r of the Gamma purchase-rate distribution.",
    "bgnbd_alpha": "BG/NBD scale alpha (days) of the Gamma purchase-rate distribution.",
    "bgnbd_a": "BG/NBD Beta parameter a of the drop-out probability.",
    "bgnbd_b": "BG/NBD Beta parameter b of the drop-out probability.",
    "bgnbd_log_likelihood": "BG/NBD log-likelihood at the optimum.",
    "gg_n_customers": "Customers with repeat purchases (Gamma-Gamma fit).",
    "gg_p": "Gamma-Gamma shape p of transaction values.",
    "gg_q": "Gamma-Gamma shape q of the spend-level distribution.",
    "gg_gamma": "Gamma-Gamma scale gamma of the spend-level distribution.",
    "gg_log_likelihood": "Gamma-Gamma log-likelihood at the optimum.",
    "converged": "Whether both optimisers reported convergence.",
}

CUSTOMER_CLV: dict[str, str] = {
    "as_of_date": "Day of the scores. Partition column.",
    "customer_id": "Customer id (pseudonymous key).",
    "frequency": "Repeat purchase days: purchase days - 1. Source: stg_orders (completed lines).",
    "recency": "Days between the first and the last purchase day.",
    "T": "Days between the first purchase day and as_of_date.",
    "monetary_value": "Mean spend of the repeat purchase days (first excluded); 0 without.",
    "prob_alive": "BG/NBD probability the customer is still active on as_of_date.",
    "expected_purchases_30d": "BG/NBD expected purchase days in the next 30 days.",
    "expected_purchases_90d": "BG/NBD expected purchase days in the next 90 days.",
    "expected_purchases_365d": "BG/NBD expected purchase days in the next 365 days.",
    "expected_avg_order_value": "Gamma-Gamma expected spend per future purchase day.",
    "clv": "Expected discounted spend over clv_horizon_days: sum over 30-day steps of expected "
    "purchases in the step * expected_avg_order_value / (1 + annual rate)^(t/365).",
    "clv_horizon_days": "Horizon of clv in days (config).",
    "model_fitted_on": "Calibration end of the applied clv_model parameters.",
}

TABLES: dict[str, dict[str, str]] = {
    "customer_features": CUSTOMER_FEATURES,
    "review_nlp": REVIEW_NLP,
    "review_topic_model": REVIEW_TOPIC_MODEL,
    "clv_model": CLV_MODEL,
    "customer_clv": CUSTOMER_CLV,
}


def data_dictionary_markdown() -> str:
    """The text of ``docs/data_dictionary.md``."""
    lines = [
        "# Data dictionary: feature tables",
        "",
        "Generated from `seg_pipeline/features/columns.py` (the same text is the Dagster column",
        "schema): `python -m seg_pipeline.features.columns > docs/data_dictionary.md`.",
        "",
        "Point-in-time rule: a row for day D uses only staging rows whose real date and arrival",
        "date are both on or before D, so recomputing D later gives the same answer. Rows of",
        "customers unknown to the CRM, lines without status, with quantity <= 0 or unit_price <= 0",
        "are left out. Rates are null when their denominator is 0.",
        "",
    ]
    for table, columns in TABLES.items():
        lines += [f"## {table}", "", "| column | meaning, formula, source |", "|---|---|"]
        lines += [f"| `{name}` | {text} |" for name, text in columns.items()]
        lines.append("")
    lines += [
        "## Working tables of customer_features",
        "",
        "Assets of their own, so that a day of customer_features costs seconds at a million",
        "customers; not meant for analysis.",
        "",
        "- `customer_feature_state` (partition `as_of_date`, the last "
        f"{STATE_KEEP_DAYS + 1} days kept): per",
        "  customer the running totals behind customer_features that do not depend on the day",
        "  (and the birth year, gender and country of the latest CRM version;",
        "  `sql/features/customer_feature_state.sql`). Day D is the state of D - 1 with only the",
        "  customers touched on D recomputed (a row of theirs arrived or was re-delivered, or the",
        "  CRM sent them); without the state of D - 1 (or with `incremental: false`) every",
        "  customer is computed.",
        "- `web_session_fragments` (partition `arrival_date`): web events of known customers",
        "  counted per arrival day, customer, session and event day",
        "  (`sql/features/web_session_fragments.sql`); the 90-day web features read one row per",
        "  session instead of every event.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(data_dictionary_markdown(), end="")
