/* The converters' input: every well-formed request line of the generator's canonical files, in file
   and line order (duplicate deliveries included), with the fields a LiteLLM row or an OTel span can
   carry. Body of the table macro canonical_records(files); malformed lines are left out. */
select
    request_id,
    provider,
    model,
    feature,
    user_id,
    status,
    service_tier,
    workload,
    tags.team as team_name,
    ts,
    ts + to_milliseconds(coalesce(duration_ms, 0)) as end_ts,
    coalesce(duration_ms, 0) as duration_ms,
    coalesce(input_tokens, 0) as input_tokens,
    coalesce(cached_input_tokens, 0) as cached_input_tokens,
    coalesce(cache_creation_input_tokens, 0) as cache_creation_input_tokens,
    coalesce(cache_creation_1h_input_tokens, 0) as cache_creation_1h_input_tokens,
    coalesce(output_tokens, 0) as output_tokens,
    coalesce(audio_input_tokens, 0) as audio_input_tokens,
    coalesce(audio_output_tokens, 0) as audio_output_tokens,
    coalesce(reasoning_tokens, 0) as reasoning_tokens,
    coalesce(gateway_cache_hit, false) as gateway_cache_hit
from read_ndjson(
    files,
    columns = {
        'request_id': 'VARCHAR', 'ts': 'TIMESTAMPTZ', 'duration_ms': 'BIGINT', 'provider': 'VARCHAR',
        'model': 'VARCHAR', 'feature': 'VARCHAR', 'user_id': 'VARCHAR', 'input_tokens': 'BIGINT',
        'cached_input_tokens': 'BIGINT', 'cache_creation_input_tokens': 'BIGINT', 'output_tokens': 'BIGINT',
        'cache_creation_1h_input_tokens': 'BIGINT', 'audio_input_tokens': 'BIGINT',
        'audio_output_tokens': 'BIGINT', 'reasoning_tokens': 'BIGINT', 'gateway_cache_hit': 'BOOLEAN',
        'status': 'VARCHAR', 'service_tier': 'VARCHAR', 'workload': 'VARCHAR', 'tags': 'STRUCT(team VARCHAR)'
    },
    format = 'newline_delimited',
    ignore_errors = true
)
where request_id is not null and ts is not null and model is not null
