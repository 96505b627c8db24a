-- _load_rejects: the lines of a JSON-lines file that are not a JSON object.
create or replace temp table _load_rejects as
select
    line_number,
    null::varchar as column_name,
    'INVALID JSON' as error_type,
    'line is not a valid JSON object' as error_message,
    line as raw_line
from _lines
where line is not null and not is_object
