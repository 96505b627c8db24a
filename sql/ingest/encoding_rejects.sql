-- _load_rejects: the lines read_lines.sql could not read (listed in _line_rejects): lines that
-- are not valid UTF-8, and lines longer than the line limit (with the column the loader found
-- them too long in, if any; the reader's own rejects name its single column 'line').
create or replace temp table _load_rejects as
select
    line as line_number,
    nullif(first(column_name), 'line') as column_name,
    case
        when first(error_type)::varchar = 'LINE SIZE OVER MAXIMUM' then 'LINE TOO LONG'
        else 'INVALID ENCODING'
    end as error_type,
    case
        when first(error_type)::varchar = 'LINE SIZE OVER MAXIMUM' then first(error_message)
        else 'line is not valid UTF-8'
    end as error_message,
    first(csv_line) as raw_line
from _line_rejects
group by line
