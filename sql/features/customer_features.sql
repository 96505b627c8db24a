-- customer_features: one row per customer the CRM has delivered by $as_of_date, describing what
-- the customer has done up to and including that day and the age band, gender and country of
-- the latest CRM version delivered by then (a point-in-time snapshot). Only rows that had both
-- happened (real date <= as_of_date) and arrived (arrival_date <= as_of_date) are used, so
-- re-computing a past day later gives the same answer. Rows of customers the CRM had not
-- delivered by as_of_date and lines with a missing status, a non-positive quantity or price are
-- left out (whether or not staging already quarantines them).
-- Reads the day's customer_feature_state (running totals of every customer known by
-- as_of_date) and web_session_fragments (web events counted per session): this query only adds
-- what depends on the day (the age band among it). Web sessions of customers not in the state
-- fall away in the final left join.
with

feature_state as (
    select
        * exclude (as_of_date),
        -- age in the year of the day, from the birth year of the latest CRM version
        year(cast($as_of_date as date)) - birth_year as age
    from customer_feature_state
    where as_of_date = $as_of_date
),

history_start as (
    select min(first_line_date) as first_day from feature_state
),

-- web sessions of the last 90 days, attributed to the customer who was logged in, from
-- web_session_fragments (one row per arrival day, customer, session and event day): a fragment
-- of a session that is not split is the session; split sessions are added up
split_sessions as (
    select distinct session_key from web_session_fragments
    where is_split and arrival_date <= $as_of_date
),

web_fragments as (
    select customer_id, session_id, session_key, event_date, product_views, searches,
        add_to_carts, checkouts
    from web_session_fragments
    where arrival_date <= $as_of_date
        and event_date <= $as_of_date
        and event_date > cast($as_of_date as date) - 90
),

web_sessions as (
    select
        customer_id,
        event_date as session_date,
        product_views,
        searches,
        add_to_carts,
        checkouts
    from web_fragments
    anti join split_sessions as s on web_fragments.session_key = s.session_key
    union all
    select
        customer_id,
        min(event_date) as session_date,
        sum(product_views) as product_views,
        sum(searches) as searches,
        sum(add_to_carts) as add_to_carts,
        sum(checkouts) as checkouts
    from web_fragments
    semi join split_sessions as s on web_fragments.session_key = s.session_key
    group by customer_id, session_id
),

web_summary as (
    select
        customer_id,
        count(*) filter (where session_date > cast($as_of_date as date) - 30)
            as count_sessions_30d,
        count(*) as count_sessions_90d,
        coalesce(sum(product_views) filter (
            where session_date > cast($as_of_date as date) - 30), 0) as count_product_views_30d,
        sum(product_views) as count_product_views_90d,
        coalesce(sum(searches) filter (
            where session_date > cast($as_of_date as date) - 30), 0) as count_searches_30d,
        sum(searches) as count_searches_90d,
        coalesce(sum(add_to_carts) filter (
            where session_date > cast($as_of_date as date) - 30), 0) as count_add_to_cart_30d,
        sum(add_to_carts) as count_add_to_cart_90d,
        count(*) filter (where session_date > cast($as_of_date as date) - 30 and add_to_carts > 0)
            as cart_sessions_30d,
        count(*) filter (
            where session_date > cast($as_of_date as date) - 30
                and add_to_carts > 0 and checkouts = 0
        ) as abandoned_sessions_30d,
        count(*) filter (where add_to_carts > 0) as cart_sessions_90d,
        count(*) filter (where add_to_carts > 0 and checkouts = 0) as abandoned_sessions_90d
    from web_sessions
    group by customer_id
),

final as (
    select
        cast($as_of_date as date) as as_of_date,
        c.customer_id,

        -- tenure and observation span
        greatest(cast($as_of_date as date) - c.signup_date, 0) as tenure_days,
        greatest(
            cast($as_of_date as date) - greatest(c.signup_date, h.first_day) + 1, 1
        ) as observed_days,
        c.has_marketing_consent,

        -- structured CRM attributes: descriptive, not segmentation features (an age below 0,
        -- i.e. a birth year after the day's year, counts as unknown)
        case
            when c.age between 0 and 24 then '<25'
            when c.age between 25 and 34 then '25-34'
            when c.age between 35 and 44 then '35-44'
            when c.age between 45 and 54 then '45-54'
            when c.age between 55 and 64 then '55-64'
            when c.age >= 65 then '65+'
        end as age_band,
        c.gender,
        c.country_code as country,

        -- recency, frequency, monetary
        cast($as_of_date as date) - c.last_order_date as recency_days,
        c.first_order_date,
        c.last_order_date,
        coalesce(c.count_orders, 0) as count_orders,
        greatest(coalesce(c.count_orders, 0) - 1, 0) as count_repeat_orders,
        coalesce(c.count_orders_placed, 0) as count_orders_placed,
        coalesce(c.count_items, 0) as count_items,
        cast(coalesce(c.lifetime_spend, 0) as double) as lifetime_spend,
        cast(c.lifetime_spend / nullif(c.count_orders, 0) as double) as avg_order_value,
        cast(c.max_order_value as double) as max_order_value,
        coalesce(c.count_orders, 0) * 30.4375 / greatest(
            cast($as_of_date as date) - greatest(c.signup_date, h.first_day) + 1, 1
        ) as purchase_rate_per_month,
        cast(coalesce(c.lifetime_spend, 0) as double) * 30.4375 / greatest(
            cast($as_of_date as date) - greatest(c.signup_date, h.first_day) + 1, 1
        ) as avg_spend_per_month,
        c.avg_days_between_orders,
        c.std_days_between_orders,

        -- returns, cancellations, discounts
        c.count_lines_returned / nullif(c.count_lines, 0) as return_rate,
        c.count_lines_cancelled / nullif(c.count_lines, 0) as cancel_rate,
        cast(c.discount_total / nullif(c.gross_spend, 0) as double) as discount_share,
        c.count_orders_discounted / nullif(c.count_orders, 0) as share_orders_discounted,

        -- category shares of completed gross spend
        cast(coalesce(c.g_electronics, 0) / nullif(c.gross_completed, 0) as double)
            as share_category_electronics,
        cast(coalesce(c.g_fashion, 0) / nullif(c.gross_completed, 0) as double)
            as share_category_fashion,
        cast(coalesce(c.g_home, 0) / nullif(c.gross_completed, 0) as double)
            as share_category_home,
        cast(coalesce(c.g_beauty, 0) / nullif(c.gross_completed, 0) as double)
            as share_category_beauty,
        cast(coalesce(c.g_sports, 0) / nullif(c.gross_completed, 0) as double)
            as share_category_sports,
        cast(coalesce(c.g_toys, 0) / nullif(c.gross_completed, 0) as double)
            as share_category_toys,
        cast(coalesce(c.g_grocery, 0) / nullif(c.gross_completed, 0) as double)
            as share_category_grocery,
        cast(coalesce(c.g_books, 0) / nullif(c.gross_completed, 0) as double)
            as share_category_books,
        cast(
            (c.gross_completed - coalesce(c.g_electronics, 0) - coalesce(c.g_fashion, 0)
                - coalesce(c.g_home, 0) - coalesce(c.g_beauty, 0) - coalesce(c.g_sports, 0)
                - coalesce(c.g_toys, 0) - coalesce(c.g_grocery, 0) - coalesce(c.g_books, 0))
            / nullif(c.gross_completed, 0) as double
        ) as share_category_other,

        -- channel mix of completed orders
        c.n_web / nullif(c.count_orders, 0) as share_channel_web,
        c.n_app / nullif(c.count_orders, 0) as share_channel_app,
        c.n_store / nullif(c.count_orders, 0) as share_channel_store,
        c.n_marketplace / nullif(c.count_orders, 0) as share_channel_marketplace,
        c.n_other_channel / nullif(c.count_orders, 0) as share_channel_other,

        -- web engagement
        coalesce(w.count_sessions_30d, 0) as count_sessions_30d,
        coalesce(w.count_sessions_90d, 0) as count_sessions_90d,
        coalesce(w.count_product_views_30d, 0) as count_product_views_30d,
        coalesce(w.count_product_views_90d, 0) as count_product_views_90d,
        coalesce(w.count_searches_30d, 0) as count_searches_30d,
        coalesce(w.count_searches_90d, 0) as count_searches_90d,
        coalesce(w.count_add_to_cart_30d, 0) as count_add_to_cart_30d,
        coalesce(w.count_add_to_cart_90d, 0) as count_add_to_cart_90d,
        w.abandoned_sessions_30d / nullif(w.cart_sessions_30d, 0) as cart_abandonment_rate_30d,
        w.abandoned_sessions_90d / nullif(w.cart_sessions_90d, 0) as cart_abandonment_rate_90d,

        -- campaign engagement
        coalesce(c.count_campaigns_received, 0) as count_campaigns_received,
        c.n_opened / nullif(c.count_campaigns_received, 0) as campaign_open_rate,
        c.n_clicked / nullif(c.count_campaigns_received, 0) as campaign_click_rate,
        c.n_converted / nullif(c.count_campaigns_received, 0) as campaign_conversion_rate,

        -- reviews
        coalesce(c.count_reviews, 0) as count_reviews,
        c.avg_review_rating,
        c.avg_review_sentiment,
        c.dominant_review_topic
    from feature_state as c
    cross join history_start as h
    left join web_summary as w on c.customer_id = w.customer_id
)

select * from final
