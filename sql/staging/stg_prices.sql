/* Resolved prices per model key, service tier, context tier and component, with each version's validity window: every catalog version (rules applied) and the config's overrides.
materialized: view
grain: model_key, layer, effective_from, service_tier, off_peak, from_prompt_tokens, component
columns:
  layer: catalog or override; an override replaces the catalog's whole entry for its key from its effective_from.
  service_tier: standard, batch, flex or priority; a key without flex or priority rows bills those calls at its standard rows.
  off_peak: Whether the row holds the entry's off_peak_pricing rates (standard, flex and priority only), billed when the call's ts falls in off_peak_windows.
  off_peak_windows: On off-peak rows, the windows they apply in - ISO weekdays (NULL every day) read in weekday_timezone, and UTC minutes of the day from start_minute to end_minute (wrapping past midnight when end <= start).
  above_tokens: The context tier the row prices, 0 for the base tier, N for the catalog's _above_<N>_tokens prices.
  from_prompt_tokens: The smallest prompt (input_tokens, cache reads and writes included) the row applies to; a call takes the row with the largest from_prompt_tokens at or below its prompt.
  component: What the price is for - per token input (uncached text), cache_read, cache_write (5-minute), cache_write_1h, audio_input, audio_cache_read, output (text), reasoning, audio_output; per call request; per search web_search; once per call that searched web_search_call.
  price_usd: USD per token, per call or per search (see component), exact.
  price_field: The catalog field the price was read from once LiteLLM's fallbacks are applied (e.g. input_cost_per_token for a cache read the entry does not price).
  price_source: catalog:<file>, override, or rule:<id> for a price filled by pipelines/sources/price_rules.yml.
  effective_to: First day the next version of the same key and layer applies; NULL while current.
  priority: 0 for an override, 1 for a catalog price; the lower wins on a day both apply.
*/
with versions as (
    select distinct model_key, layer, effective_from
    from price_catalog
),

windows as (
    select
        model_key,
        layer,
        effective_from,
        lead(effective_from) over (partition by model_key, layer order by effective_from) as effective_to
    from versions
)

select
    price_catalog.model_key,
    price_catalog.litellm_provider,
    price_catalog.layer,
    price_catalog.service_tier,
    price_catalog.off_peak,
    price_catalog.off_peak_windows,
    price_catalog.above_tokens,
    price_catalog.from_prompt_tokens,
    price_catalog.component,
    price_catalog.price_usd,
    price_catalog.price_field,
    price_catalog.price_source,
    price_catalog.effective_from,
    windows.effective_to,
    case when price_catalog.layer = 'override' then 0 else 1 end as priority
from price_catalog
inner join windows using (model_key, layer, effective_from)
