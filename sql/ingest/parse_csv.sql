-- The rows of a CSV landing file as raw rows: the contract's columns ($columns) as text, the
-- line number (_record_number, from csv_numbered_lines.sql) and the lineage of the delivery.
-- $file_columns maps every column of the file's header (plus _record_number first) to VARCHAR;
-- lines the parser cannot split into them go to _rejects (see csv_rejects.sql).
select
    columns(lambda c: list_contains($columns, c)),
    _record_number,
    $as_of_date::date as _partition_date,
    $source_file as _source_file,
    now()::timestamp as _loaded_at
from read_csv(
    $path,
    columns = $file_columns,
    header = false,
    auto_detect = false,
    delim = ',',
    quote = '"',
    escape = '"',
    ignore_errors = true,
    store_rejects = true,
    rejects_table = '_rejects',
    rejects_scan = '_rejects_scan',
    max_line_size = $max_line_bytes,
    buffer_size = $buffer_bytes
)
