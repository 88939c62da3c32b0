/* GPU utilization per pool (busy GPU-hours / billed GPU-hours), ratio | lines */
select day as x, pool as series, utilization as y, false as marked, null as note
from fct_gpu_utilization_daily
where day between $first and $last
order by x, series
