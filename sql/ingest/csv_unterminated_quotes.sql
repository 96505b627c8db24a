-- _load_rejects: CSV lines (after the header) with an odd number of double quotes. A CSV parser
-- would swallow every following line into the unterminated field; rejecting just that line lets
-- the rest of the file load.
create or replace temp table _load_rejects as
select
    line_number,
    null::varchar as column_name,
    'UNTERMINATED QUOTE' as error_type,
    'odd number of double quotes on the line' as error_message,
    line as raw_line
from _lines
where line_number > 1
    and (length(line) - length(replace(line, '"', ''))) % 2 = 1
