/* The data findings of the days, warnings first */
select day, severity, finding, subject, message
from fct_data_findings
where day between $first and $last
order by severity = 'warning' desc, day asc, finding asc, subject asc
