/* wilson_interval(k, n): the Wilson score 95 % interval of a rate of k events in n trials, as
   {low, high} (shares 0-1; NULL for no trials). Right where a rate is near 0 or 1 or n is small,
   which is where the plain normal interval goes below 0. Persisted in the warehouse, so analysts
   can call it too. */
create or replace macro wilson_interval(k, n) as
    case when n > 0 then {
        'low': greatest(0, (
            k / n + 1.96 ^ 2 / (2 * n) - 1.96 * sqrt(k / n * (1 - k / n) / n + 1.96 ^ 2 / (4 * n ^ 2))
        ) / (1 + 1.96 ^ 2 / n)),
        'high': least(1, (
            k / n + 1.96 ^ 2 / (2 * n) + 1.96 * sqrt(k / n * (1 - k / n) / n + 1.96 ^ 2 / (4 * n ^ 2))
        ) / (1 + 1.96 ^ 2 / n))
    } end
