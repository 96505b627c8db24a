-- _load_rejects: the lines of the file that are not valid UTF-8 (from read_lines.sql).
create or replace temp table _load_rejects as
select
    line as line_number,
    null::varchar as column_name,
    'INVALID ENCODING' as error_type,
    'line is not valid UTF-8' as error_message,
    first(csv_line) as raw_line
from _line_rejects
group by line
