-- web_session_fragments reads its own other partitions (to flag split sessions): created
-- before its first day is computed. Columns: sql/features/web_session_fragments.sql.
create table if not exists web_session_fragments (
    arrival_date date,
    customer_id varchar,
    session_id varchar,
    event_date date,
    events bigint,
    product_views bigint,
    searches bigint,
    add_to_carts bigint,
    checkouts bigint,
    session_key ubigint,
    is_split boolean
)
