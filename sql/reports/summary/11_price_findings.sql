/* Price findings */
select provider, model_family, finding, first_day, days,
       round(billed_to_estimated_ratio, 3) as ratio, recommendation
from fct_price_findings order by provider, model_family
