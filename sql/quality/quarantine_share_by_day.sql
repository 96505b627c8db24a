-- The days of _staged whose quarantined share passes the source's threshold: more rows break a
-- rule than $max_quarantine_share of the day's delivered rows (rows breaking a rule, and kept
-- rows), a day of fewer than $min_rows_for_share rows judged as if it had that many. With the
-- rules broken that day, most frequent first.
with

days as (
    select
        arrival_date,
        count(*) filter (where _rule is not null) as bad,
        count(*) filter (where _rule is not null or not _is_redundant) as delivered
    from _staged
    group by arrival_date
),

rules as (
    select arrival_date, _rule as rule, count(*) as n
    from _staged
    where _rule is not null
    group by arrival_date, _rule
)

select
    d.arrival_date,
    d.bad,
    d.delivered,
    (
        select list(struct_pack(rule := r.rule, n := r.n) order by r.n desc, r.rule asc)
        from rules as r
        where r.arrival_date = d.arrival_date
    ) as rules
from days as d
where d.bad > $max_quarantine_share * greatest(d.delivered, $min_rows_for_share)
order by d.arrival_date
