-- Lines longer than $max_line_bytes that read_lines.sql left out (DuckDB's parallel CSV reader
-- drops a line longer than its buffer silently, and lists a line just over its limit without
-- the column), found by the loader's own scan of the file ($long_lines: line number, bytes,
-- detected column, first bytes): listed in _line_rejects beside the reader's own rejects;
-- encoding_rejects.sql prefers this row where the reader listed the line too.
insert into _line_rejects (line, column_name, error_type, error_message, csv_line)
select
    long_line.line_number as line,
    long_line.column_name,
    'LINE SIZE OVER MAXIMUM' as error_type,
    'line is ' || long_line.bytes || ' bytes, more than the limit of ' || $max_line_bytes
    || coalesce(', in column ' || long_line.column_name, '') as error_message,
    long_line.head as csv_line
from (select unnest($long_lines, recursive := true)) as long_line
