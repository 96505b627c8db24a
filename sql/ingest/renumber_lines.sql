-- A line rejected by read_lines.sql is missing from the numbering of _lines: shift each kept
-- line by the number of rejected lines before it, so every line keeps its physical number.
update _lines
set line_number = line_number + (
    select count(*)
    from (
        select line - row_number() over (order by line) as good_lines_before
        from (select distinct line from _line_rejects)
    )
    where good_lines_before < _lines.line_number
)
where exists (select 1 from _line_rejects)
