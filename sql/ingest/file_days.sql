-- On which days the rows of one delivered file ($source_file, partition $as_of_date) happened:
-- how many happened on another day than the file's, how many have a readable event time
-- ($event_time names that column) and the most common day.
select
    count(*) filter (where day <> $as_of_date) as other_day_rows,
    count(day) as dated_rows,
    mode(day) as usual_day
from (
    select cast(utc_timestamp(columns(lambda c: c = $event_time)) as date)
    from query_table($raw_table)
    where _partition_date = $as_of_date and _source_file = $source_file
) as file_rows (day)
