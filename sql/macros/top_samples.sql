/* top_samples(lists): the request ids of the 5 costliest examples in a list of daily sample lists
   ([{cost_usd, request_id}], as fct_token_efficiency_daily keeps them), costliest first; ties by
   request_id, so the same ids come back on every run. NULL lists (days without an example) are
   skipped. Persisted in the warehouse, so analysts can call it too. */
create or replace macro top_samples(lists) as
    list_transform(
        list_slice(list_reverse_sort(flatten(list_filter(lists, lambda l: l is not null))), 1, 5),
        lambda s: s.request_id
    )
