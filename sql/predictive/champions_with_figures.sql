-- champions_with_figures: each target's champion on $as_of_date with its validation figures and
-- the baselines' (model_registry metrics and details JSON), for the demo's summary.
select
    m.target,
    m.horizon_days,
    m.champion_version,
    r.metrics,
    r.details
from predictive_models as m
left join model_registry as r on m.champion_version = r.model_version
where m.as_of_date = $as_of_date
order by m.target
