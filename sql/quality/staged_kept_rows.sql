-- The rows of _staged the table keeps: no broken rule, not a repeat; without control columns.
select * exclude (_rule, _reason, _is_redundant)
from _staged
where _rule is null and not _is_redundant
