-- _lines(line_number, line, is_object): a text landing file ($path), one row per physical
-- line. JSON text cannot contain a raw unit separator (chr(31)) and the CSV contract has no
-- newlines inside fields, so reading with it as the delimiter and no quoting splits on newlines
-- only. Lines that are not valid UTF-8 are left out here and listed in _line_rejects (line,
-- csv_line); renumber_lines.sql gives the kept lines their physical numbers back. With
-- $json_lines, is_object says whether each line is one JSON object (is_json_object.sql),
-- computed here in parallel with the read instead of in a later pass over the table.
create or replace temp table _lines as
select
    row_number() over () as line_number,
    line,
    is_object
from (
    select
        line,
        $json_lines and is_json_object(line) as is_object
    from read_csv(
        $path,
        columns = { 'line': 'VARCHAR' },
        header = false,
        delim = chr(31),
        quote = '',
        escape = '',
        auto_detect = false,
        max_line_size = $max_line_bytes,
        buffer_size = $buffer_bytes,
        ignore_errors = true,
        store_rejects = true,
        rejects_table = '_line_rejects',
        rejects_scan = '_line_rejects_scan'
    )
)
