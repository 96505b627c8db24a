-- web_session_fragments: web events of known (logged-in or stitched) customers that arrived
-- between $start_date and $end_date, counted per arrival day, customer, session and real event
-- day. Nearly every session is one fragment; a session whose events arrive on several days or
-- span midnight has several, and customer_features adds those up per session, so a day's web
-- features read one row per session instead of every event. session_key is a hash of
-- (customer_id, session_id) used to find split sessions fast; is_split marks fragments of a
-- session with another fragment in the same computation (the caller also flags those with a
-- fragment in another stored arrival day). Partition: arrival_date.
with fragments as (
    select
        arrival_date,
        resolved_customer_id as customer_id,
        session_id,
        event_date,
        count(*) as events,
        count(*) filter (where event_type = 'product_view') as product_views,
        count(*) filter (where event_type = 'search') as searches,
        count(*) filter (where event_type = 'add_to_cart') as add_to_carts,
        count(*) filter (where event_type = 'checkout') as checkouts
    from stg_web_events
    where arrival_date between $start_date and $end_date
        and resolved_customer_id is not null
        and event_date is not null
    group by all
)

select
    *,
    hash(customer_id, session_id) as session_key,
    count(*) over (partition by customer_id, session_id) > 1 as is_split
from fragments
