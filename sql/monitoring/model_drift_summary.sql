-- Drift over the run's window $start_date..$end_date (run metadata): days measured, days with a
-- drifted feature and the largest PSI.
select
    count(distinct as_of_date) as days_measured,
    count(distinct as_of_date) filter (where drifted) as days_drifted,
    coalesce(max(psi), 0.0) as max_psi
from model_drift
where as_of_date between $start_date and $end_date
