-- Candles rolled up by {period} from the daily ones: open is the first day's open, close the
-- last day's close, high and low the extremes over the days; the pooled rate is recomputed
-- from counts (the interval is left to the daily rows).
CREATE OR REPLACE VIEW candles_{view} AS
SELECT subject, date_trunc('{period}', date)::DATE AS {period},
       arg_min(open, date) AS open, max(high) AS high, min(low) AS low,
       arg_max(close, date) AS close, (sum(resolved) / sum(volume))::DOUBLE AS rate,
       sum(volume)::BIGINT AS volume, sum(harness_errors)::BIGINT AS harness_errors,
       sum(skipped)::BIGINT AS skipped, sum(cost_usd) AS cost_usd, count(*) AS days
FROM candles GROUP BY ALL;
