/* cache_policies(): the two cache lifetimes the prompt-cache simulation (cache policy simulation v1
   of the savings spec) prices, one row each: policy (ttl_short, ttl_long) and ttl_s (seconds) - the
   one place they are written. int_prompt_cache_calls simulates them and keeps them on every call;
   fct_prompt_cache_opportunity_daily states them on every row, simulated calls or not. */
create or replace macro cache_policies() as table
select policies.policy, policies.ttl_s
from (values ('ttl_short', 300), ('ttl_long', 3600)) as policies (policy, ttl_s)
