-- Every row the in-memory load and staging of seg-validate quarantined: where and why, without
-- the raw record (it may hold personal values, as keyed hashes or, for load rejects, in clear).
select source, stage, rule, reason, source_file, line_number, column_name
from quarantine
order by source_file, line_number, rule
