-- _load_rejects: the CSV lines parse_csv.sql could not parse, one per line (DuckDB reports one
-- error per missing column), with the line's text without its line-number prefix.
create or replace temp table _load_rejects as
select
    split_part(first(csv_line), ',', 1)::bigint as line_number,
    string_agg(distinct column_name, ', ') as column_name,
    first(error_type order by error_type) as error_type,
    string_agg(distinct error_message, '; ') as error_message,
    regexp_replace(first(csv_line), '^[0-9]+,', '') as raw_line
from _rejects
group by line
