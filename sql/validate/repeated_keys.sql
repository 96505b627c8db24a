-- The rows of one raw table ($raw_table) whose key ($key: the source's key columns, trimmed)
-- comes again on a later line of the same file, with the line of that next delivery. Staging
-- keeps the last delivery of a key: an exact repeat is dropped, a conflicting earlier one is
-- quarantined (duplicate_key), an earlier CRM version of the same updated_at is superseded.
with

keyed as (
    select
        _source_file,
        _record_number,
        list_transform(
            list_value(*columns(lambda c: list_contains($key, c))),
            lambda v: nullif(trim(v::varchar), '')
        ) as row_key
    from query_table($raw_table)
),

repeated as (
    select
        _source_file,
        _record_number,
        lead(_record_number) over (
            partition by _source_file, row_key order by _record_number
        ) as next_record_number
    from keyed
    where list_count(row_key) = len($key)
)

select _source_file, _record_number, next_record_number
from repeated
where next_record_number is not null
order by _source_file, _record_number
