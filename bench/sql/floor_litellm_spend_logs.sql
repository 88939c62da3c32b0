/* The floor's reading of a LiteLLM_SpendLogs CSV export: one row per exported row of the days
   asked for. `prompt_tokens` already includes cache reads (LiteLLM's OpenAI-shaped usage); the reads
   are `usage_object.cache_read_input_tokens` (Anthropic) or `.prompt_tokens_details.cached_tokens`.
   The metadata JSON is parsed once per row (one json_extract with a list of paths). */
with exported as (
    select
        request_id,
        custom_llm_provider as provider,
        cache_hit,
        end_user,
        user,
        cast(startTime as timestamp) as start_time,
        cast(prompt_tokens as bigint) as input_tokens,
        cast(completion_tokens as bigint) as output_tokens,
        -- LiteLLM's cache hits log the model with its provider prefix (`openai/gpt-4o-mini`)
        case
            when starts_with(model, custom_llm_provider || '/') then substr(model, length(custom_llm_provider) + 2)
            else model
        end as model,
        json_extract(
            metadata,
            [
                '$.spend_logs_metadata.feature',
                '$.usage_object.cache_read_input_tokens',
                '$.usage_object.prompt_tokens_details.cached_tokens'
            ]
        ) as extracted
    from read_csv(files, header = true, all_varchar = true)
)

select
    request_id,
    provider,
    model,
    input_tokens,
    output_tokens,
    cast(start_time as date) as day,
    coalesce(nullif(extracted[1] ->> '$', ''), 'unattributed') as feature,
    coalesce(nullif(end_user, ''), nullif(user, ''), 'anonymous') as user_id,
    coalesce(cast(extracted[2] as bigint), cast(extracted[3] as bigint), 0) as cached_input_tokens,
    coalesce(lower(cache_hit) = 'true', false) as gateway_cache_hit
from exported
where cast(start_time as date) between start_day and end_day
