/* The floor's reading of OTLP JSON spans (one ExportTraceServiceRequest per line): one row per span
   of the days asked for, its gen_ai.* attributes read through a map. gen_ai.usage.input_tokens
   includes cache reads (the semantic conventions' rule). */
with resource_spans as (
    select unnest(resourceSpans) as resource_span
    from read_ndjson(
        files,
        columns = {
            'resourceSpans': 'STRUCT(scopeSpans STRUCT(spans STRUCT("startTimeUnixNano" VARCHAR, '
            || 'attributes STRUCT(key VARCHAR, value STRUCT(stringValue VARCHAR, intValue VARCHAR))[])[])[])[]'
        },
        format = 'newline_delimited',
        ignore_errors = true
    )
),

scope_spans as (
    select unnest(resource_span.scopeSpans) as scope_span from resource_spans
),

spans as (
    select
        make_timestamp(cast(span.startTimeUnixNano as bigint) // 1000) as start_time,
        map_from_entries(span.attributes) as attribute
    from (select unnest(scope_span.spans) as span from scope_spans) as unnested
)

select
    attribute['gen_ai.response.id'].stringValue as request_id,
    -- OTel's provider names, as the catalog keys them
    case attribute['gen_ai.provider.name'].stringValue
        when 'azure.ai.openai' then 'azure'
        else attribute['gen_ai.provider.name'].stringValue
    end as provider,
    coalesce(
        attribute['gen_ai.response.model'].stringValue, attribute['gen_ai.request.model'].stringValue
    ) as model,
    cast(start_time as date) as day,
    coalesce(attribute['feature'].stringValue, 'unattributed') as feature,
    coalesce(attribute['user.id'].stringValue, 'anonymous') as user_id,
    coalesce(cast(attribute['gen_ai.usage.input_tokens'].intValue as bigint), 0) as input_tokens,
    coalesce(cast(attribute['gen_ai.usage.cache_read.input_tokens'].intValue as bigint), 0) as cached_input_tokens,
    coalesce(cast(attribute['gen_ai.usage.output_tokens'].intValue as bigint), 0) as output_tokens,
    false as gateway_cache_hit
from spans
where cast(start_time as date) between start_day and end_day
