-- _load_rejects: the lines read_lines.sql could not read (listed in _line_rejects): lines that
-- are not valid UTF-8, and lines longer than the line limit. A long line found by the loader's
-- scan (long_line_rejects.sql) is described by that row, which names the column the line is too
-- long in, if any (the reader's own rejects name its single column 'line').
create or replace temp table _load_rejects as
with

rejects as (
    select
        *,
        error_type::varchar = 'LINE SIZE OVER MAXIMUM' as is_long,
        error_type::varchar = 'LINE SIZE OVER MAXIMUM'
        and coalesce(column_name, '') <> 'line' as is_scanned
    from _line_rejects
)

select
    line as line_number,
    nullif(arg_max(column_name, is_scanned), 'line') as column_name,
    case when bool_or(is_long) then 'LINE TOO LONG' else 'INVALID ENCODING' end as error_type,
    case
        when bool_or(is_long) then arg_max(error_message, is_scanned)
        else 'line is not valid UTF-8'
    end as error_message,
    arg_max(csv_line, is_scanned) as raw_line
from rejects
group by line
