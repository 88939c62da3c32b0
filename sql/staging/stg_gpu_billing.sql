/* GPU instance usage per billing row, mapped to serving pools and replicas.
materialized: view
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
    billed_usd,
    effective_usd
from gpu_billing_lines
