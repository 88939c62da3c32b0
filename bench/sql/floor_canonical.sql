/* The floor's reading of canonical gateway JSONL (.jsonl or .jsonl.gz): one row per request line of
   the days asked for. Body of the table macro floor_requests(files, start_day, end_day); no
   validation, no quarantine, no dedupe: a malformed line is skipped. */
select
    request_id,
    provider,
    model,
    cast(ts as date) as day,
    coalesce(feature, 'unattributed') as feature,
    coalesce(user_id, 'anonymous') as user_id,
    coalesce(input_tokens, 0) as input_tokens,
    coalesce(cached_input_tokens, 0) as cached_input_tokens,
    coalesce(output_tokens, 0) as output_tokens,
    coalesce(gateway_cache_hit, false) as gateway_cache_hit
from read_ndjson(
    files,
    columns = {
        'request_id': 'VARCHAR', 'ts': 'TIMESTAMPTZ', 'provider': 'VARCHAR', 'model': 'VARCHAR',
        'feature': 'VARCHAR', 'user_id': 'VARCHAR', 'input_tokens': 'BIGINT', 'cached_input_tokens': 'BIGINT',
        'output_tokens': 'BIGINT', 'gateway_cache_hit': 'BOOLEAN'
    },
    format = 'newline_delimited',
    ignore_errors = true
)
where cast(ts as date) between start_day and end_day
