-- Rows of _staged that will be kept and arrived after their real day (tables of dated events).
select count(*) as late_rows
from _staged
where _rule is null and not _is_redundant and is_late
