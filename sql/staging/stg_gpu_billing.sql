/* GPU instance usage per billing row, mapped to serving pools and replicas.
materialized: view
columns:
  gpu_cost_usd: What the row's GPU hours cost, amortized (FOCUS EffectiveCost; the GPU-hours CSV's usd), USD. Usage a reservation, Savings Plan or CUD covers costs its share of the commitment here, though its cash BilledCost is 0.
*/
select
    day,
    source_format,
    provider_name,
    pool,
    replica_id,
    resource_id,
    instance_type,
    gpu_type,
    gpu_count,
    instance_hours,
    gpu_hours,
    effective_usd as gpu_cost_usd,
    billed_usd as billed_cash_usd
from gpu_billing_lines
