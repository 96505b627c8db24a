-- keyed_hashes: the keyed hash (pseudonymize) of each of $values, in their order.
select pseudonymize(value) as value_hash
from unnest($values::varchar[]) with ordinality as v (value, position)
order by position
