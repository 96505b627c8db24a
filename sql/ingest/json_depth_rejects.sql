-- _load_rejects: the JSON lines that nest deeper than $max_json_depth levels ($deep_lines: line
-- number and the top-level key whose value is too deep), measured by the loader.
create or replace temp table _load_rejects as
with

deep as (
    select unnest($deep_lines, recursive := true)
)

select
    l.line_number,
    deep.column_name,
    'JSON TOO DEEP' as error_type,
    'JSON nests more than ' || $max_json_depth || ' levels deep'
    || coalesce(', in column ' || deep.column_name, '') as error_message,
    l.line as raw_line
from _lines as l
inner join deep on l.line_number = deep.line_number
