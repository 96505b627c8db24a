-- The rows of model_drift's latest partition, the largest PSI first (drift_retraining_sensor).
with latest as (
    select max(as_of_date) as as_of_date from model_drift
)

select
    drift.as_of_date,
    drift.model_kind,
    drift.model_version,
    drift.reference_date,
    drift.feature,
    drift.psi,
    drift.threshold,
    drift.drifted
from model_drift as drift
inner join latest using (as_of_date)
order by drift.model_kind asc, drift.model_version asc, drift.psi desc, drift.feature asc
