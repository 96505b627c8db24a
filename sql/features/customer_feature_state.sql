-- customer_feature_state: per customer known to the CRM by $as_of_date, the running totals
-- behind customer_features that do not depend on the day itself (counts, sums, first and last
-- dates, gaps; the latest CRM version's sign-up, consent, birth year, gender and country), from
-- the rows that had both happened (real date <= as_of_date) and arrived (arrival_date <=
-- as_of_date). A customer's values depend only on that customer's rows, so the state of a day is
-- either computed for every customer or, when $incremental and the state of the day before is
-- stored, carried over from that day with only the customers whose rows changed on the day
-- (a CRM version among them) recomputed (the same query, so the same values); computed_on says
-- on which day a customer's row was last recomputed.
-- Lines with a missing status, a non-positive quantity or price are left out; a row delivered
-- again later replaces the earlier delivery (whichever customer the earlier one named).
with

previous_state as (
    select * exclude (as_of_date) from customer_feature_state
    where $incremental and as_of_date = cast($as_of_date as date) - 1
),

is_incremental as (
    select count(*) > 0 as yes from (select 1 from previous_state limit 1)
),

-- rows that became visible on the day: they arrived on it, or happened on it after arriving
new_lines as (
    select order_id, line_number, customer_id from stg_orders
    where (arrival_date = $as_of_date and order_date <= $as_of_date)
        or (order_date = $as_of_date and arrival_date < $as_of_date)
),

new_reviews as (
    select review_id, customer_id from review_nlp
    where (arrival_date = $as_of_date and review_date <= $as_of_date)
        or (review_date = $as_of_date and arrival_date < $as_of_date)
),

-- customers whose state can differ from the day before: a row of theirs became visible, a row
-- of theirs was replaced by a delivery that became visible, or the CRM delivered them
touched as (
    select customer_id from stg_crm_customers where arrival_date = $as_of_date
    union
    select customer_id from new_lines
    union
    select o.customer_id from stg_orders as o
    semi join new_lines as n on o.order_id = n.order_id and o.line_number = n.line_number
    where o.arrival_date <= $as_of_date
    union
    select customer_id from stg_campaign_sends
    where (arrival_date = $as_of_date and sent_date <= $as_of_date)
        or (sent_date = $as_of_date and arrival_date < $as_of_date)
    union
    select customer_id from new_reviews
    union
    select r.customer_id from review_nlp as r
    semi join new_reviews as n on r.review_id = n.review_id
    where r.arrival_date <= $as_of_date
),

-- the customers computed here: the touched ones when carrying over, else every known customer
scope as (
    select customer_id from touched
    where (select yes from is_incremental)
    union
    select customer_id from stg_crm_customers
    where not (select yes from is_incremental)
        and arrival_date <= $as_of_date
        and customer_id is not null
),

-- the latest CRM version of each customer: sign-up, consent and the structured attributes
customers as (
    select customer_id, signup_date, has_marketing_consent, birth_year, gender, country_code
    from stg_crm_customers
    where arrival_date <= $as_of_date
        and customer_id in (select customer_id from scope)
    qualify row_number() over (
        partition by customer_id order by arrival_date desc, updated_at desc nulls last
    ) = 1
),

visible_lines as (
    select
        customer_id, order_id, line_number, order_date, order_status, category, channel,
        quantity, unit_price, discount_amount, line_amount, arrival_date
    from stg_orders
    where arrival_date <= $as_of_date
        and order_date <= $as_of_date
        and order_status is not null
        and quantity > 0
        and unit_price > 0
),

scoped_lines as (
    select * from visible_lines
    where customer_id in (select customer_id from customers)
),

-- the latest delivered version of each order line: an earlier delivery is dropped whichever
-- customer the later one names, so the result of a customer does not depend on the scope
-- (a join that builds its hash table on the scoped lines, then an anti-join)
superseded as (
    select distinct l.order_id, l.line_number, l.arrival_date
    from scoped_lines as l
    inner join visible_lines as n
        on l.order_id = n.order_id
        and l.line_number = n.line_number
        and l.arrival_date < n.arrival_date
),

order_lines as (
    select
        l.customer_id, l.order_id, l.line_number, l.order_date, l.order_status, l.category,
        l.channel, l.quantity, l.unit_price, l.discount_amount, l.line_amount,
        l.quantity * l.unit_price as gross_amount
    from scoped_lines as l
    anti join superseded as s
        on l.order_id = s.order_id
        and l.line_number = s.line_number
        and l.arrival_date = s.arrival_date
),

orders as (
    select
        customer_id,
        order_id,
        min(order_date) as order_date,
        min(channel) as channel,
        count(*) filter (where order_status = 'completed') > 0 as is_purchase,
        coalesce(sum(line_amount) filter (where order_status = 'completed'), 0) as spend,
        coalesce(sum(gross_amount) filter (where order_status = 'completed'), 0) as gross,
        coalesce(sum(discount_amount) filter (where order_status = 'completed'), 0)
            as discount,
        coalesce(bool_or(discount_amount > 0) filter (where order_status = 'completed'), false)
            as has_discount
    from order_lines
    group by customer_id, order_id
),

order_summary as (
    select
        customer_id,
        count(*) as count_orders_placed,
        count(*) filter (where is_purchase) as count_orders,
        min(order_date) filter (where is_purchase) as first_order_date,
        max(order_date) filter (where is_purchase) as last_order_date,
        sum(spend) filter (where is_purchase) as lifetime_spend,
        max(spend) filter (where is_purchase) as max_order_value,
        sum(gross) filter (where is_purchase) as gross_spend,
        sum(discount) filter (where is_purchase) as discount_total,
        count(*) filter (where is_purchase and has_discount) as count_orders_discounted,
        count(*) filter (where is_purchase and channel = 'web') as n_web,
        count(*) filter (where is_purchase and channel = 'app') as n_app,
        count(*) filter (where is_purchase and channel = 'store') as n_store,
        count(*) filter (where is_purchase and channel = 'marketplace') as n_marketplace,
        count(*) filter (
            where is_purchase
                and (channel is null or channel not in ('web', 'app', 'store', 'marketplace'))
        ) as n_other_channel
    from orders
    group by customer_id
),

line_summary as (
    select
        customer_id,
        min(order_date) as first_line_date,
        count(*) as count_lines,
        count(*) filter (where order_status = 'returned') as count_lines_returned,
        count(*) filter (where order_status = 'cancelled') as count_lines_cancelled,
        sum(quantity) filter (where order_status = 'completed') as count_items,
        sum(gross_amount) filter (where order_status = 'completed') as gross_completed,
        sum(gross_amount) filter (where order_status = 'completed' and category = 'electronics')
            as g_electronics,
        sum(gross_amount) filter (where order_status = 'completed' and category = 'fashion')
            as g_fashion,
        sum(gross_amount) filter (where order_status = 'completed' and category = 'home')
            as g_home,
        sum(gross_amount) filter (where order_status = 'completed' and category = 'beauty')
            as g_beauty,
        sum(gross_amount) filter (where order_status = 'completed' and category = 'sports')
            as g_sports,
        sum(gross_amount) filter (where order_status = 'completed' and category = 'toys')
            as g_toys,
        sum(gross_amount) filter (where order_status = 'completed' and category = 'grocery')
            as g_grocery,
        sum(gross_amount) filter (where order_status = 'completed' and category = 'books')
            as g_books
    from order_lines
    group by customer_id
),

-- days between consecutive purchase days
purchase_gaps as (
    select customer_id, order_date - lag(order_date) over (
        partition by customer_id order by order_date
    ) as gap_days
    from (select distinct customer_id, order_date from orders where is_purchase)
),

gap_summary as (
    select
        customer_id,
        avg(gap_days) as avg_days_between_orders,
        stddev_samp(gap_days) as std_days_between_orders
    from purchase_gaps
    where gap_days is not null
    group by customer_id
),

campaign_summary as (
    select
        customer_id,
        count(*) as count_campaigns_received,
        count(*) filter (where is_opened) as n_opened,
        count(*) filter (where is_clicked) as n_clicked,
        count(*) filter (where is_converted) as n_converted
    from (
        -- campaign_id and customer_id are the key: a later delivery names the same customer
        -- control-group rows (the campaign's holdout) were never sent
        select customer_id, is_control_group, is_opened, is_clicked, is_converted
        from stg_campaign_sends
        where arrival_date <= $as_of_date
            and sent_date <= $as_of_date
            and customer_id in (select customer_id from customers)
        qualify row_number() over (
            partition by campaign_id, customer_id order by arrival_date desc
        ) = 1
    )
    where not is_control_group
    group by customer_id
),

visible_reviews as (
    select review_id, customer_id, rating, sentiment_compound, topic_label, arrival_date
    from review_nlp
    where arrival_date <= $as_of_date and review_date <= $as_of_date
),

reviews as (
    select r.customer_id, r.rating, r.sentiment_compound, r.topic_label
    from visible_reviews as r
    where r.customer_id in (select customer_id from customers)
        and not exists (
            select 1 from visible_reviews as n
            where n.review_id = r.review_id and n.arrival_date > r.arrival_date
        )
),

review_summary as (
    select
        customer_id,
        count(*) as count_reviews,
        avg(rating) as avg_review_rating,
        avg(sentiment_compound) as avg_review_sentiment
    from reviews
    group by customer_id
),

-- most frequent topic; ties go to the alphabetically first label
review_topics as (
    select customer_id, topic_label as dominant_review_topic
    from (
        select customer_id, topic_label, count(*) as n
        from reviews
        where topic_label is not null
        group by customer_id, topic_label
    )
    qualify row_number() over (partition by customer_id order by n desc, topic_label asc) = 1
),

recomputed as (
    select
        c.customer_id,
        c.signup_date,
        c.has_marketing_consent,
        c.birth_year,
        c.gender,
        c.country_code,
        l.first_line_date,
        o.first_order_date,
        o.last_order_date,
        coalesce(o.count_orders, 0) as count_orders,
        coalesce(o.count_orders_placed, 0) as count_orders_placed,
        o.lifetime_spend,
        o.max_order_value,
        o.gross_spend,
        o.discount_total,
        o.count_orders_discounted,
        o.n_web,
        o.n_app,
        o.n_store,
        o.n_marketplace,
        o.n_other_channel,
        l.count_lines,
        l.count_lines_returned,
        l.count_lines_cancelled,
        l.count_items,
        l.gross_completed,
        l.g_electronics,
        l.g_fashion,
        l.g_home,
        l.g_beauty,
        l.g_sports,
        l.g_toys,
        l.g_grocery,
        l.g_books,
        g.avg_days_between_orders,
        g.std_days_between_orders,
        coalesce(m.count_campaigns_received, 0) as count_campaigns_received,
        m.n_opened,
        m.n_clicked,
        m.n_converted,
        coalesce(r.count_reviews, 0) as count_reviews,
        r.avg_review_rating,
        r.avg_review_sentiment,
        t.dominant_review_topic,
        cast($as_of_date as date) as computed_on
    from customers as c
    left join order_summary as o on c.customer_id = o.customer_id
    left join line_summary as l on c.customer_id = l.customer_id
    left join gap_summary as g on c.customer_id = g.customer_id
    left join campaign_summary as m on c.customer_id = m.customer_id
    left join review_summary as r on c.customer_id = r.customer_id
    left join review_topics as t on c.customer_id = t.customer_id
)

select cast($as_of_date as date) as as_of_date, *
from (
    select * from previous_state
    anti join scope on previous_state.customer_id = scope.customer_id
    union all by name
    select * from recomputed
)
