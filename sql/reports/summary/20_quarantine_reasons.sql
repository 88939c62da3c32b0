/* Quarantine reasons */
select reason, count(*) as lines from gateway_quarantine
where day between $first and $last group by reason order by lines desc
