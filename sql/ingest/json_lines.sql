-- _json: the lines of a JSON-lines file (from _lines) and whether each is a JSON object.
create or replace temp table _json as
select
    line_number,
    line,
    coalesce(case when json_valid(line) then json_type(line) = 'OBJECT' end, false) as is_valid
from _lines
where line is not null
