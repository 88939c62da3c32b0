/* The latest day with savings findings computed: `costwatch savings`'s day when none is given */
select max(day) as day from fct_savings_opportunities
