-- The rows of a Parquet landing file as raw rows: the contract's columns ($columns; their types
-- were checked against the contract and are cast to the raw table's on insert), the row number
-- and the lineage of the delivery.
select
    columns(lambda c: list_contains($columns, c)),
    file_row_number + 1 as _record_number,
    $as_of_date::date as _partition_date,
    $source_file as _source_file,
    now()::timestamp as _loaded_at
from read_parquet($path, file_row_number = true)
