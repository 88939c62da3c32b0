/* The eval kit of a routing or right-size finding as of a day: its calls with their sizes, to replay against the target (`costwatch savings --eval-kit KEY`) */
with kit as (
    select
        period_start,
        period_end,
        unnest(from_json(evidence ->> '$.eval_kit_request_ids', '["VARCHAR"]')) as request_id
    from fct_savings_opportunities
    where finding_key = $key and day = $day
)

select
    requests.request_id,
    requests.ts,
    requests.feature,
    requests.model,
    requests.input_tokens,
    requests.output_tokens
from fct_requests as requests
inner join kit
    on
        requests.request_id = kit.request_id
        and requests.day between kit.period_start and kit.period_end
order by requests.input_tokens, requests.output_tokens, requests.request_id
