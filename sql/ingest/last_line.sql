-- The number of the last physical line of the file read by read_lines.sql (0 if none).
select coalesce(
    greatest((select max(line_number) from _lines), (select max(line) from _line_rejects)), 0
) as last_line
