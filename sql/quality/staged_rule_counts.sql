-- Rows of _staged that break a row rule, per rule.
select _rule as rule, count(*) as rows
from _staged
where _rule is not null
group by _rule
order by _rule
