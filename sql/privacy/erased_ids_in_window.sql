-- erased_ids_in_window: the customer ids of $raw_table's partitions [$start_date, $end_date]
-- whose keyed hash is in erased_customers (each distinct id hashed once).
select customer_id
from (
    select distinct trim(customer_id) as customer_id
    from query_table($raw_table)
    where _partition_date between $start_date and $end_date and customer_id is not null
)
where pseudonymize(customer_id) in (select customer_key from erased_customers)
