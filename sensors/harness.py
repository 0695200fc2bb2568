"""The harness-retry sensor: re-grade partitions whose failures were the harness's, not the agent's."""

import datetime as dt
import json

import dagster as dg

from pipeline import clock
from pipeline.orchestration.partitions import date_key
from pipeline.orchestration.resources import TrackerResource
from sensors.jobs import regrade_job, tick_interval

THRESHOLD = 0.2  # share of harness_error among a partition's evaluations
MAX_RETRIES = 2  # per partition; after that the errors stand and the candles count them
LOOKBACK_DAYS = 14

HARNESS_SHARE_SQL = """
SELECT date::VARCHAR AS date, subject, avg((outcome = 'harness_error')::INT) AS share
FROM evaluations
WHERE date >= $since
GROUP BY ALL HAVING share > $threshold ORDER BY date, subject
"""


@dg.sensor(
    job=regrade_job,
    minimum_interval_seconds=tick_interval(600),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=f"Re-grades (without asking the agent again) partitions of the last {LOOKBACK_DAYS} "
    f"days whose share of harness_error exceeds {THRESHOLD:.0%}, at most {MAX_RETRIES} times each.",
)
def harness_retry_sensor(context: dg.SensorEvaluationContext, tracker: TrackerResource):
    engine = tracker.open()
    warehouse = engine.warehouse
    if not warehouse.lake.has_files("evaluations"):
        return dg.SkipReason("no evaluations yet")
    since = clock.today(engine.config.timezone) - dt.timedelta(days=LOOKBACK_DAYS)
    broken = warehouse.scan(HARNESS_SHARE_SQL, {"since": since, "threshold": THRESHOLD})
    tries = json.loads(context.cursor) if context.cursor else {}
    requests = []
    for row in broken.iter_rows(named=True):
        key = f"{row['date']}|{row['subject']}"
        done = tries.get(key, 0)
        if done >= MAX_RETRIES:
            continue
        tries[key] = done + 1
        requests.append(
            dg.RunRequest(
                run_key=f"harness-retry:{key}:{done + 1}",
                partition_key=date_key(row["date"], row["subject"]),
                tags={
                    "candlebench/trigger": "harness-retry",
                    "candlebench/harness_error_share": f"{row['share']:.2f}",
                },
            )
        )
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(tries, sort_keys=True))
