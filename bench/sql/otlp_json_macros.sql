-- OTLP JSON attribute values (AnyValue): a string, or a 64-bit integer as its decimal string; NULL
-- when the call has no such value, so the attribute is left out.
create or replace temp macro otlp_string(text_value) as
case when text_value is not null then json_object('stringValue', text_value) end;

create or replace temp macro otlp_int(integer_value) as
case when integer_value is not null then json_object('intValue', cast(integer_value as varchar)) end;
