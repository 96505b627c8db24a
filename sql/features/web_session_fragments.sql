-- web_session_fragments: web events of known (logged-in or stitched) customers that arrived on
-- $as_of_date, counted per arrival day, customer, session and real event day. Nearly every
-- session is one fragment; a session whose events arrive on several days or span midnight has
-- several, and customer_features adds those up per session, so a day's web features read one
-- row per session instead of every event. session_key is a hash of (customer_id, session_id)
-- used to find split sessions fast; is_split marks a fragment whose session has another
-- fragment on the same arrival day or one stored for another arrival day within 90 days (the
-- flag only decides whether customer_features adds the session up from its fragments, exact
-- either way, so it needs to reach at least one fragment of each split session; the 90 days
-- rely on staging's rule that an event never arrives more than a week after it happened).
-- Partition: arrival_date.
with

fragments as (
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
    where arrival_date = $as_of_date
        and resolved_customer_id is not null
        and event_date is not null
    group by all
),

keyed as (
    select
        *,
        hash(customer_id, session_id) as session_key,
        count(*) over (partition by customer_id, session_id) > 1 as is_split_today
    from fragments
),

-- sessions of the day that also have a fragment stored for another arrival day
split_elsewhere as (
    select distinct f.session_key, f.customer_id, f.session_id
    from web_session_fragments as f
    semi join keyed as k on f.session_key = k.session_key
    where f.arrival_date between cast($as_of_date as date) - 90 and cast($as_of_date as date) + 90
        and f.arrival_date <> $as_of_date
)

select
    k.arrival_date,
    k.customer_id,
    k.session_id,
    k.event_date,
    k.events,
    k.product_views,
    k.searches,
    k.add_to_carts,
    k.checkouts,
    k.session_key,
    k.is_split_today or s.session_key is not null as is_split
from keyed as k
left join split_elsewhere as s
    on k.session_key = s.session_key
    and k.customer_id = s.customer_id
    and s.session_id is not distinct from k.session_id
