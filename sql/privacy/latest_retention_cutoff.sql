-- latest_retention_cutoff: the latest cut-off of any retention purge (days before it are gone).
select max(cutoff_date) as cutoff_date
from retention_runs
