/* The features whose API spend moved most against a week before, from the day's digest */
select unnest(top_movers, recursive := true) from fct_daily_digest where day = $last
