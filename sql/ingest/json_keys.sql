-- The keys used by the file's JSON objects (the file's columns), read from every $every-th
-- line (1: every line).
select distinct unnest(json_keys(line)) as key
from _lines
where is_object and line_number % $every = 0
