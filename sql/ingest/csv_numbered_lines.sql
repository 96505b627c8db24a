-- Write the readable CSV lines (after the header, without unterminated quotes) to
-- $numbered_path, each prefixed with its line number, so the rows parse_csv.sql reads and the
-- parser's rejects both point at the line of the original file.
copy (
    select line_number::varchar || ',' || line
    from _lines
    where line_number > 1
        and line is not null
        and (length(line) - length(replace(line, '"', ''))) % 2 = 0
    order by line_number
) to $numbered_path (format csv, header false, quote '', escape '', delimiter chr(31))
