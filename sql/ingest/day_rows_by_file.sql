-- How many rows that happened on $as_of_date each of two partitions delivered ($start_date and
-- $end_date: the day's own file and the file that seems to repeat it).
select _partition_date, count(*) as rows
from query_table($raw_table)
where _partition_date in ($start_date, $end_date)
    and cast(utc_timestamp(columns(lambda c: c = $event_time)) as date) = $as_of_date
group by _partition_date
