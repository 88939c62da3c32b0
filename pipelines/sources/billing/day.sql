-- One UTC day of provider billing out of the parsed exports (relations `cost_lines`,
-- `usage_lines`, `coverage`, `quarantine` registered from Arrow), for the lake. `$day` is the day.

-- name: provider_cost_lines
-- A charge over several days lands on the day its period ends: the day the bill is complete.
select * from cost_lines where period_end = $day;

-- name: provider_usage_lines
select * exclude (day) from usage_lines where day = $day;

-- name: provider_billing_coverage
select * exclude (day) from coverage where day = $day;

-- name: provider_quarantine
-- Every file is read on every run, so the quarantine is written whole: records without a
-- readable day (a broken file, a CSV row with a bad date) have no partition to go to.
select * from quarantine order by source_file, record_ref;

-- name: billed_usd_by_provider
select provider, sum(billed_usd)::double as billed_usd
from cost_lines
where period_end = $day
group by provider
order by provider;
