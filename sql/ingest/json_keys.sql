-- Every key used by the file's JSON objects (the file's columns).
select distinct unnest(json_keys(line)) as key
from _lines
where is_object
