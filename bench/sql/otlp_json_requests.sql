/* Canonical records as the OpenTelemetry SDK's OTLP JSON file exporter writes their spans: one
   ExportTraceServiceRequest per line (column resourceSpans; COPY ... (format json) writes the line).
   The attributes are those the official OpenAI instrumentation and OpenLLMetry's Anthropic one set
   (fixtures/gateway/otel_spans.otlp.jsonl), each only when the call has it; 64-bit integers as
   decimal strings, ids in hex, the times in Unix nanoseconds. Input tokens include cache reads and
   writes (the semantic conventions' rule, the canonical one). The product's own dimensions ride as
   span attributes `feature` and `user.id`, as an app sets them. A gateway cache hit has no OTel
   attribute: it is a span like any other. Body of the table macro otlp_requests(files). */
with spans as (
    select
        model,
        ts,
        end_ts,
        -- ids: hex of a hash of the request id (stable across runs)
        md5(request_id) as trace_id,
        left(md5('span:' || request_id), 16) as span_id,
        case
            when provider = 'anthropic' then 'opentelemetry.instrumentation.anthropic'
            else 'opentelemetry.util.genai.handler'
        end as scope_name,
        case when provider = 'anthropic' then '0.62.4' else '1.1b0' end as scope_version,
        list_filter(
            [
                {'key': 'gen_ai.operation.name', 'value': otlp_string('chat')},
                {
                    'key': 'gen_ai.provider.name',
                    'value': otlp_string(case provider when 'azure' then 'azure.ai.openai' else provider end)
                },
                {'key': 'gen_ai.request.model', 'value': otlp_string(model)},
                {'key': 'gen_ai.response.model', 'value': otlp_string(model)},
                {'key': 'gen_ai.response.id', 'value': otlp_string(request_id)},
                {'key': 'gen_ai.usage.input_tokens', 'value': otlp_int(input_tokens)},
                {'key': 'gen_ai.usage.output_tokens', 'value': otlp_int(output_tokens)},
                {'key': 'gen_ai.usage.cache_read.input_tokens', 'value': otlp_int(nullif(cached_input_tokens, 0))},
                {
                    'key': 'gen_ai.usage.cache_creation.input_tokens',
                    'value': otlp_int(nullif(cache_creation_input_tokens, 0))
                },
                {'key': 'gen_ai.usage.reasoning.output_tokens', 'value': otlp_int(nullif(reasoning_tokens, 0))},
                {'key': 'openai.response.service_tier', 'value': otlp_string(service_tier)},
                {'key': 'feature', 'value': otlp_string(feature)},
                {'key': 'user.id', 'value': otlp_string(user_id)},
                {'key': 'error.type', 'value': otlp_string(case when status = 'error' then '500' end)}
            ],
            lambda attribute: attribute.value is not null
        ) as attributes,
        cast(case when status = 'error' then '{"code":2,"message":"Error code: 500"}' else '{}' end as json)
            as span_status
    from canonical_records(files)
)

select
    [
        {
            'resource': {
                'attributes': [
                    {'key': 'telemetry.sdk.language', 'value': otlp_string('python')},
                    {'key': 'telemetry.sdk.name', 'value': otlp_string('opentelemetry')},
                    {'key': 'telemetry.sdk.version', 'value': otlp_string('1.45.2')},
                    {'key': 'service.name', 'value': otlp_string('costwatch-bench')}
                ]
            },
            'scopeSpans': [
                {
                    'scope': {'name': scope_name, 'version': scope_version},
                    'spans': [
                        {
                            'traceId': trace_id,
                            'spanId': span_id,
                            'flags': 256,
                            'name': 'chat ' || model,
                            'kind': 3,
                            'startTimeUnixNano': cast(epoch_ns(ts) as varchar),
                            'endTimeUnixNano': cast(epoch_ns(end_ts) as varchar),
                            'attributes': attributes,
                            'status': span_status
                        }
                    ],
                    'schemaUrl': 'https://opentelemetry.io/schemas/1.37.0'
                }
            ]
        }
    ] as resourceSpans
from spans
