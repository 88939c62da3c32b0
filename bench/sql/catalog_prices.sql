/* Per-token prices (USD per token) of a LiteLLM-format catalog: one row per entry. Body of the
   table macro catalog_prices(catalog_path). An entry without a cache-read price reads cache hits at
   its input price. */
with catalog as (
    select
        unnest(
            map_entries(
                from_json(
                    content,
                    '"MAP(VARCHAR, STRUCT(input_cost_per_token DOUBLE, cache_read_input_token_cost DOUBLE, '
                    || 'output_cost_per_token DOUBLE))"'
                )
            )
        ) as entry
    from read_text(catalog_path)
)

select
    entry.key as price_key,
    entry.value.input_cost_per_token as input_usd_per_token,
    coalesce(entry.value.cache_read_input_token_cost, entry.value.input_cost_per_token) as cache_read_usd_per_token,
    entry.value.output_cost_per_token as output_usd_per_token
from catalog
