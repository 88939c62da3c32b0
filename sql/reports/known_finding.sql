/* Whether a finding_key names a finding of any day: `costwatch findings` refuses one that does not */
select count(*) > 0 as known from fct_savings_opportunities where finding_key = $key
