-- The objects of a JSON-lines landing file as raw rows: the contract's columns as text
-- ($structure: {"column": "VARCHAR", ...}; nested values keep their JSON text, missing keys are
-- NULL), the line number and the lineage of the delivery.
select
    line_number as _record_number,
    -- one column per contract column
    unnest(from_json(line, $structure)),  -- noqa: AL03
    $as_of_date::date as _partition_date,
    $source_file as _source_file,
    now()::timestamp as _loaded_at
from _lines
where is_object
