/* model_family(model): a model name lower-cased without its date suffix, so a bill's dated
   snapshot (gpt-4o-mini-2024-07-18, claude-3-5-haiku-20241022) meets the name a gateway logged.
   Persisted in the warehouse, so analysts can call it too. */
create or replace macro model_family(model) as
    regexp_replace(lower(model), '-(\d{4}-\d{2}-\d{2}|\d{8})$', '')
