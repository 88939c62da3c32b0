/* cache_rules(model): how a provider's prompt cache treats a prefix, as its docs say
   (checked 2026-12-03; OpenAI's 2026-12-04): min_prefix_tokens (a shorter prefix is never cached,
   silently), granularity_tokens (a hit is a whole multiple of it), write_premium (whether writing
   the cache costs more than the input price, so a simulated write is priced as one) and
   one_hour_writes (whether the provider sells a 1-hour write at its own price: the long lifetime's
   simulated writes are 1-hour writes there, 5-minute writes elsewhere) and lifetime_s (the cache's
   own lifetime where the provider fixes one, seconds: no simulated lifetime outlives it, and a
   write is read or not within it; NULL where the lifetime is the kind of write, or best effort).
   The prices themselves come from the catalog through price_calls.
   - OpenAI and Azure OpenAI: 1,024 tokens, hits in 128-token steps. No write fee before GPT-5.6;
     from GPT-5.6 on (gpt-5.6*, gpt-5.7+, gpt-6+, also behind a provider prefix such as
     azure/gpt-5.6-sol) writes cost 1.25x the input price (the catalog's
     cache_creation_input_token_cost) and live exactly 30 minutes (lifetime_s 1,800); no 1-hour
     write price
     (https://developers.openai.com/api/docs/guides/prompt-caching, checked 2026-12-04).
   - Anthropic (and Claude on Bedrock, Vertex, Azure): 4,096 tokens for Opus 4.5+ and Haiku 4.5,
     2,048 for Haiku 3 and 3.5, 1,024 for the others; any length above it; writes cost 1.25x
     (5 minutes) or 2x (1 hour) the input price
     (https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching).
   - Gemini (implicit caching): 4,096 tokens for 2.5 Pro and 3 Pro, 1,024 for the others; no write
     fee (https://ai.google.dev/gemini-api/docs/caching).
   - Any other model: OpenAI's rule before GPT-5.6, the most common one. */
create or replace macro cache_rules(model) as
    case
        when lower(model) like '%claude%' then {
            'min_prefix_tokens': case
                when regexp_matches(lower(model), 'opus-4-[5-9]|haiku-4-5') then 4096
                when regexp_matches(lower(model), 'claude-3-haiku|claude-3-5-haiku|haiku-3') then 2048
                else 1024
            end,
            'granularity_tokens': 1,
            'write_premium': true,
            'one_hour_writes': true,
            'lifetime_s': null::integer
        }
        when lower(model) like '%gemini%' then {
            'min_prefix_tokens': case when regexp_matches(lower(model), 'gemini-(2\.5|3)-pro') then 4096 else 1024 end,
            'granularity_tokens': 1,
            'write_premium': false,
            'one_hour_writes': false,
            'lifetime_s': null::integer
        }
        -- OpenAI GPT-5.6 and later: gpt-5.6 to gpt-5.99, gpt-6 to gpt-19, the version never followed
        -- by another digit (gpt-5.6-sol, gpt-6.1-terra, openai.gpt-6-luna; not Azure's gpt-35-turbo).
        when regexp_matches(lower(model), 'gpt-(5\.([6-9]|[1-9][0-9])|[6-9]|1[0-9])([^0-9]|$)') then {
            'min_prefix_tokens': 1024,
            'granularity_tokens': 128,
            'write_premium': true,
            'one_hour_writes': false,
            'lifetime_s': 1800
        }
        else {
            'min_prefix_tokens': 1024,
            'granularity_tokens': 128,
            'write_premium': false,
            'one_hour_writes': false,
            'lifetime_s': null::integer
        }
    end
