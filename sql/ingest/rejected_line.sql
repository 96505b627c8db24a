-- The load reject (rule, error) of one line of one delivered file, if that line was rejected.
select rule, reason
from quarantine
where table_name = $table_name
    and arrival_date = $as_of_date
    and source_file = $source_file
    and stage = 'load'
    and line_number = $line_number
order by rule
limit 1
