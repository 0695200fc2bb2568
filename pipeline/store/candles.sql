-- Daily candles for [$start, $end]: one row per subject and day.
-- An attempt counts when it was graded (not skipped, not a harness error) on a task whose
-- harness controls held that day (gold resolved, empty did not).
WITH broken AS (
    SELECT DISTINCT date, instance_id FROM controls WHERE NOT ok AND date BETWEEN $start AND $end
),
attempts_in AS (
    SELECT e.date, e.subject, e.trial, e.instance_id, e.outcome, e.resolved,
           a.started_at, a.cost_usd, a.agent_version,
           (b.instance_id IS NOT NULL) AS excluded
    FROM evaluations e
    JOIN attempts a USING (attempt_id)
    LEFT JOIN broken b ON b.date = e.date AND b.instance_id = e.instance_id
    WHERE e.date BETWEEN $start AND $end
),
graded AS (
    SELECT * FROM attempts_in
    WHERE NOT excluded AND {counted}
),
per_trial AS (
    SELECT date, subject, trial, avg(resolved::INT) AS rate, min(started_at) AS first_start
    FROM graded GROUP BY ALL
),
ohlc AS (
    SELECT date, subject,
           arg_min(rate, first_start) AS open, max(rate) AS high,
           min(rate) AS low, arg_max(rate, first_start) AS close, count(*) AS trials
    FROM per_trial GROUP BY ALL
),
per_task AS (
    SELECT date, subject, instance_id, sum(resolved::INT) AS s, count(*) AS m
    FROM graded GROUP BY ALL
),
pooled AS (
    SELECT date, subject, sum(s) AS resolved, sum(m) AS volume, count(*) AS n_tasks,
           sum(s) / sum(m) AS rate
    FROM per_task GROUP BY ALL
),
-- Task-clustered standard error of the ratio estimator sum(s) / sum(m).
clustered AS (
    SELECT t.date, t.subject,
           CASE WHEN count(*) > 1
                THEN sqrt(count(*) / (count(*) - 1) * sum(power(t.s - p.rate * t.m, 2))) / sum(t.m)
           END AS se
    FROM per_task t JOIN pooled p USING (date, subject) GROUP BY ALL
),
tallies AS (
    SELECT date, subject,
           count(*) FILTER (WHERE outcome = 'harness_error' AND NOT excluded) AS harness_errors,
           count(*) FILTER (WHERE outcome = 'skipped') AS skipped,
           count(DISTINCT instance_id) FILTER (WHERE excluded) AS excluded_tasks,
           sum(cost_usd) AS cost_usd,
           string_agg(DISTINCT agent_version, ',' ORDER BY agent_version) AS agent_version
    FROM attempts_in GROUP BY ALL
)
SELECT tallies.date, tallies.subject,
       o.open, o.high, o.low, o.close,
       p.rate, greatest(p.rate - 1.959964 * c.se, 0) AS ci_low,
       least(p.rate + 1.959964 * c.se, 1) AS ci_high,
       p.n_tasks, o.trials, p.volume, p.resolved,
       tallies.harness_errors, tallies.skipped, tallies.excluded_tasks,
       tallies.cost_usd, tallies.agent_version
FROM tallies
LEFT JOIN ohlc o USING (date, subject)
LEFT JOIN pooled p USING (date, subject)
LEFT JOIN clustered c USING (date, subject)
ORDER BY tallies.subject, tallies.date
