/* Whether a feature's calls fit a cheaper sibling model, per day x feature x provider x model x target model (savings.routes): every billed call priced again at the target's prices with the same tokens (int_model_fit_calls, per call), the "easy" share that routing would move, and the observable proxies of quality (errors, cut answers, retries, answer length) of the model and of the target where the same feature already calls it - the natural experiment.
materialized: daily_table
grain: day, feature, provider, model, target_model
lookback: 0
memory: per_request
columns:
  target_model: The cheaper sibling (savings.routes, by the model's family: lower-case, no date suffix), priced under its own catalog name.
  requests: Billed calls (status ok, not a gateway cache hit, priced) of the model in the feature.
  current_cost_usd: What they cost as billed, USD.
  target_cost_usd: The same calls at the target's prices - same tokens, same cache reads and writes, same service tier - USD. NULL when the target has no price.
  rightsize_savings_usd: current_cost_usd - target_cost_usd: the whole feature on the target, USD (negative when the target costs more).
  easy_requests: Billed calls with at most savings.easy.max_input_tokens prompt tokens and savings.easy.max_output_tokens answer tokens, not cut by their cap (finish_reason not length).
  easy_cost_usd: What the easy calls cost as billed, USD.
  route_savings_usd: The easy calls' cost as billed less at the target's prices, USD.
  easy_requests_half: Easy calls at half both thresholds (the sensitivity).
  route_savings_half_usd: Their saving on the target, USD.
  easy_requests_double: Easy calls at twice both thresholds.
  route_savings_double_usd: Their saving on the target, USD.
  output_p90: The 90th percentile answer of the billed calls, output tokens (quantile_disc).
  calls: Every call of the model in the feature (errors included; gateway cache hits not): the proxies' denominator.
  error_calls: Of those, the failed ones (status error).
  length_calls: Calls cut by their output cap (finish_reason = length).
  retry_calls: Calls that repeat, within 60 s, the same user's call of the feature with the same first prefix hash (or prompt_hash without one): a user trying again.
  ok_calls: Calls that succeeded.
  ok_output_tokens: Their answer tokens, summed (the mean answer's numerator).
  target_calls: The same proxies for the target model's own calls of the same feature that day (by family): its calls ...
  target_error_calls: ... failed ...
  target_length_calls: ... cut ...
  target_retry_calls: ... retried ...
  target_ok_calls: ... succeeded ...
  target_ok_output_tokens: ... and their answer tokens.
  route_samples: The 5 easy calls whose move saves most: [{cost_usd (the saving), request_id}], largest first (ties by request_id); NULL when none.
  route_draws: 5 easy calls drawn at random with a fixed seed: the ids with the smallest md5 (random_samples merges days into a window).
  rightsize_samples: The 5 calls whose move saves most, as route_samples, over all the billed calls.
  rightsize_draws: 5 of all the billed calls drawn as route_draws.
  eval_kit: The day's eval-kit cells: per prompt decile x answer decile of the billed calls (ntile(10), ties by request_id), the 2 calls with the smallest md5 of their id: [{input_decile, output_decile, draw, request_id}], up to 200; eval_kit merges days into a window's kit.
*/
with day_calls as (
    -- The day's API calls of the features, with whether a user tried again within 60 s.
    select
        *,
        model_family(model) as family,
        coalesce(
            epoch_ms(ts) - epoch_ms(lag(ts) over (
                partition by user_id, feature, coalesce(prefix_hashes[1].hash, prompt_hash)
                order by ts, request_id
            )) <= 60000
            and coalesce(prefix_hashes[1].hash, prompt_hash) is not null,
            false
        ) as is_retry
    from int_billed_calls
    where day between $start and $end and pool is null and not gateway_cache_hit
),

proxies as (
    -- The observable proxies of quality, per feature and model family.
    select
        day,
        feature,
        provider,
        family,
        count(*) as calls,
        count(*) filter (where status = 'error') as error_calls,
        count(*) filter (where finish_reason = 'length') as length_calls,
        count(*) filter (where is_retry) as retry_calls,
        count(*) filter (where status = 'ok') as ok_calls,
        coalesce(sum(output_tokens) filter (where status = 'ok'), 0) as ok_output_tokens
    from day_calls
    group by all
),

fit as (
    select
        day,
        feature,
        provider,
        model,
        target_model,
        count(*) as requests,
        sum(billed_cost_usd) as current_cost_usd,
        -- NULL when any call has no price at the target: no partial sum passes for the whole.
        case when count(target_cost_usd) = count(*) then sum(target_cost_usd) end as target_cost_usd,
        count(*) filter (where easy_scale <= 1) as easy_requests,
        coalesce(sum(billed_cost_usd) filter (where easy_scale <= 1), 0) as easy_cost_usd,
        sum(route_savings_usd) as route_savings_usd,
        count(*) filter (where easy_scale <= 0.5) as easy_requests_half,
        sum(rightsize_savings_usd) filter (where easy_scale <= 0.5) as route_savings_half_usd,
        count(*) filter (where easy_scale <= 2) as easy_requests_double,
        sum(rightsize_savings_usd) filter (where easy_scale <= 2) as route_savings_double_usd,
        quantile_disc(output_tokens, 0.9) as output_p90,
        max_by(
            {'cost_usd': rightsize_savings_usd, 'request_id': request_id},
            {'cost_usd': rightsize_savings_usd, 'request_id': request_id},
            5
        ) filter (where easy_scale <= 1 and target_cost_usd is not null) as route_samples,
        min_by(request_id, md5(request_id), 5) filter (where easy_scale <= 1) as route_draws,
        max_by(
            {'cost_usd': rightsize_savings_usd, 'request_id': request_id},
            {'cost_usd': rightsize_savings_usd, 'request_id': request_id},
            5
        ) filter (where target_cost_usd is not null) as rightsize_samples,
        min_by(request_id, md5(request_id), 5) as rightsize_draws
    from int_model_fit_calls
    where day between $start and $end
    group by all
),

deciles as (
    select
        day,
        feature,
        provider,
        model,
        target_model,
        request_id,
        md5(request_id) as draw,
        ntile(10) over (partition by day, feature, provider, model, target_model order by input_tokens, request_id)
            as input_decile,
        ntile(10) over (partition by day, feature, provider, model, target_model order by output_tokens, request_id)
            as output_decile
    from int_model_fit_calls
    where day between $start and $end
),

kits as (
    -- The eval kit's candidates of the day: 2 calls per prompt decile x answer decile cell.
    select
        day,
        feature,
        provider,
        model,
        target_model,
        list(
            {'input_decile': input_decile, 'output_decile': output_decile, 'draw': draw, 'request_id': request_id}
            order by input_decile, output_decile, draw
        ) as eval_kit
    from (
        select *
        from deciles
        qualify
            row_number() over (
                partition by day, feature, provider, model, target_model, input_decile, output_decile order by draw
            ) <= 2
    ) as picked
    group by all
)

select
    fit.day,
    fit.feature,
    fit.provider,
    fit.model,
    fit.target_model,
    fit.requests,
    fit.current_cost_usd,
    fit.target_cost_usd,
    fit.current_cost_usd - fit.target_cost_usd as rightsize_savings_usd,
    fit.easy_requests,
    fit.easy_cost_usd,
    case when fit.target_cost_usd is not null then coalesce(fit.route_savings_usd, 0) end as route_savings_usd,
    fit.easy_requests_half,
    case when fit.target_cost_usd is not null then coalesce(fit.route_savings_half_usd, 0) end
        as route_savings_half_usd,
    fit.easy_requests_double,
    case when fit.target_cost_usd is not null then coalesce(fit.route_savings_double_usd, 0) end
        as route_savings_double_usd,
    fit.output_p90,
    own.calls,
    own.error_calls,
    own.length_calls,
    own.retry_calls,
    own.ok_calls,
    own.ok_output_tokens,
    coalesce(target.calls, 0) as target_calls,
    coalesce(target.error_calls, 0) as target_error_calls,
    coalesce(target.length_calls, 0) as target_length_calls,
    coalesce(target.retry_calls, 0) as target_retry_calls,
    coalesce(target.ok_calls, 0) as target_ok_calls,
    coalesce(target.ok_output_tokens, 0) as target_ok_output_tokens,
    fit.route_samples,
    fit.route_draws,
    fit.rightsize_samples,
    fit.rightsize_draws,
    kits.eval_kit
from fit
inner join kits using (day, feature, provider, model, target_model)
inner join proxies as own
    on
        fit.day = own.day
        and fit.feature = own.feature
        and fit.provider = own.provider
        and model_family(fit.model) = own.family
left join proxies as target
    on
        fit.day = target.day
        and fit.feature = target.feature
        and fit.provider = target.provider
        and model_family(fit.target_model) = target.family
order by all
