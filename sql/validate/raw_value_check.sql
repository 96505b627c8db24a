-- The values of one column ($column_name) of a raw table ($raw_table) that break one row
-- expectation of its raw suite (expectations/raw_<source>.json): not matching $regex, not in
-- $value_set, or outside [$min_value, $max_value] (a NULL parameter asks nothing). NULL values
-- pass, as in Great Expectations.
with

checked as (
    select
        _source_file,
        _record_number,
        coalesce(columns(lambda c: c = $column_name)) as raw_value
    from query_table($raw_table)
)

select _source_file, _record_number, value
from (select _source_file, _record_number, raw_value::varchar as value from checked)
where value is not null
    and (
        not regexp_matches(value, coalesce($regex::varchar, ''))
        or not coalesce(list_contains($value_set::varchar[], value), true)
        or try_cast(value as double) < $min_value::double
        or try_cast(value as double) > $max_value::double
    )
order by _source_file, _record_number
