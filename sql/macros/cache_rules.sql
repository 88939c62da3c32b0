/* cache_rules(model): how a provider's prompt cache treats a prefix, as its docs say
   (checked 2026-12-03): min_prefix_tokens (a shorter prefix is never cached, silently),
   granularity_tokens (a hit is a whole multiple of it) and write_premium (whether writing the cache
   costs more than the input price, so a simulated write is priced as one). The prices themselves
   come from the catalog through price_calls.
   - OpenAI and Azure OpenAI: 1,024 tokens, hits in 128-token steps, no write fee
     (https://platform.openai.com/docs/guides/prompt-caching).
   - Anthropic (and Claude on Bedrock, Vertex, Azure): 4,096 tokens for Opus 4.5+ and Haiku 4.5,
     2,048 for Haiku 3 and 3.5, 1,024 for the others; any length above it; writes cost 1.25x
     (5 minutes) or 2x (1 hour) the input price
     (https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching).
   - Gemini (implicit caching): 4,096 tokens for 2.5 Pro and 3 Pro, 1,024 for the others; no write
     fee (https://ai.google.dev/gemini-api/docs/caching).
   - Any other model: OpenAI's rule, the most common one. */
create or replace macro cache_rules(model) as
    case
        when lower(model) like '%claude%' then {
            'min_prefix_tokens': case
                when regexp_matches(lower(model), 'opus-4-[5-9]|haiku-4-5') then 4096
                when regexp_matches(lower(model), 'claude-3-haiku|claude-3-5-haiku|haiku-3') then 2048
                else 1024
            end,
            'granularity_tokens': 1,
            'write_premium': true
        }
        when lower(model) like '%gemini%' then {
            'min_prefix_tokens': case when regexp_matches(lower(model), 'gemini-(2\.5|3)-pro') then 4096 else 1024 end,
            'granularity_tokens': 1,
            'write_premium': false
        }
        else {'min_prefix_tokens': 1024, 'granularity_tokens': 128, 'write_premium': false}
    end
