/* Token prices per model key and validity window, from every catalog version and the config's overrides.
materialized: view
grain: model_key, price_source, effective_from
columns:
  cache_read_input_token_cost: USD per prompt token read from cache; the input price when the catalog gives none (no known discount).
  cache_creation_input_token_cost: USD per prompt token written to cache; the input price when the catalog gives none (OpenAI charges no write premium).
*/
select
    model_key,
    litellm_provider,
    input_cost_per_token,
    output_cost_per_token,
    coalesce(cache_read_input_token_cost, input_cost_per_token) as cache_read_input_token_cost,
    coalesce(cache_creation_input_token_cost, input_cost_per_token) as cache_creation_input_token_cost,
    effective_from,
    lead(effective_from) over (
        partition by model_key, price_source = 'override' order by effective_from
    ) as effective_to,
    price_source,
    case when price_source = 'override' then 0 else 1 end as priority
from price_catalog
