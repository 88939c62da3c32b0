/* exact_sum(x): the sum of a DOUBLE column, the same whatever order its rows arrive in. DuckDB adds
   doubles in the order its threads meet the rows, so a plain sum can differ in the last bits
   between a day run alone and the same day in a range. Here each value is rounded to 12 decimal
   places (a GPU-hour to 3.6 nanoseconds) and summed exactly as a DECIMAL, then turned back. */
create or replace macro exact_sum(x) as
    sum(x::decimal(38, 12))::double
