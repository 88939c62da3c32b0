-- Helpers every format's projection and validate.sql call; created once per connection.
-- `_parsed`, `_meta` and `_num` read LiteLLM exports; `_timestamp` and `_tokens` apply the canonical rules.
-- A JSON value that an export may hold as its text (LiteLLM's Postgres JSON columns through CSV).
create or replace temp macro _parsed(x) as
    case when json_type(x) = 'VARCHAR' and json_valid(x->>'$') then (x->>'$')::json else x end;
create or replace temp macro _meta(j) as _parsed(j->'metadata');
-- A count exported as text (CSV cells): digits -> a JSON number (leading zeros allowed, which
-- JSON itself forbids); an empty cell -> absent; anything else stays text, a bad type.
create or replace temp macro _num(x) as
    case when json_type(x) = 'VARCHAR' and trim(x->>'$') = '' then null
         when json_type(x) = 'VARCHAR' and regexp_full_match(trim(x->>'$'), '-?[0-9]{1,30}')
         then to_json(trim(x->>'$')::hugeint) else x end;
-- A request time: text that starts as a date (YYYY-MM-DD) and DuckDB reads, in years 1-9999.
-- DuckDB alone also reads 'infinity', 'epoch' and years past 9999, none a real request time
-- and none a day a partition can hold.
create or replace temp macro _timestamp(t) as
    case when regexp_matches(t, '^\s*[0-9]{4}-[0-9]{2}-[0-9]{2}')
              and year(try_cast(t as timestamptz) at time zone 'UTC') between 1 and 9999
         then try_cast(t as timestamptz) end;
-- A token count: JSON integer (or integral double) -> BIGINT; absent -> 0; else NULL (bad type).
create or replace temp macro _tokens(x) as
    case when x is null or json_type(x) = 'NULL' then 0
         when json_type(x) in ('BIGINT', 'UBIGINT') then try_cast(x::varchar as bigint)
         when json_type(x) = 'DOUBLE' and try_cast(x::varchar as double) = floor(try_cast(x::varchar as double))
              and abs(try_cast(x::varchar as double)) < 9e15
              then try_cast(x::varchar as double)::bigint
         end;
create or replace temp macro _token_type_ok(x) as
    x is null or json_type(x) = 'NULL' or _tokens(x) is not null;
-- The price tier the provider applied, in the canonical words; the words providers write for
-- their standard tier (OpenAI `default`/`auto`, Bedrock `on_demand`) are standard, and so is a word
-- the canonical set lacks (validate.sql keeps that one in tags). NULL when the source says nothing.
create or replace temp macro _service_tier(t) as
    case when nullif(trim(t), '') is null then null
         when lower(trim(t)) in ('batch', 'flex', 'priority') then lower(trim(t))
         else 'standard' end;
-- Why generation stopped, in the canonical words (OpenAI, Anthropic, Gemini and Bedrock spellings).
create or replace temp macro _finish_reason(t) as
    case when nullif(trim(t), '') is null then null
         when lower(trim(t)) in ('stop', 'end_turn', 'stop_sequence', 'eos', 'complete', 'finish_reason_stop')
             then 'stop'
         when lower(trim(t)) in ('length', 'max_tokens', 'model_context_window_exceeded') then 'length'
         when lower(trim(t)) in ('tool_calls', 'tool_use', 'function_call') then 'tool_calls'
         when lower(trim(t)) in ('content_filter', 'refusal', 'safety', 'recitation', 'blocklist',
                                 'prohibited_content', 'spii', 'guardrail_intervened') then 'content_filter'
         else 'other' end;
