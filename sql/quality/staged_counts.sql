-- Rows of the temp table _staged (a staging SQL file's rows of a window): read, and dropped as
-- exact repeats or superseded versions (rows breaking no rule that are not kept).
select
    count(*) as rows_in,
    count(*) filter (where _rule is null and _is_redundant) as rows_redundant
from _staged
