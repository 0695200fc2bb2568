"""The harness-retry sensor: re-grade partitions whose failures were the harness's, not the agent's.

A tick reads the lookback window's partition files only (the lake lists them by day, never a
glob of the whole lake), so its cost does not grow with the history kept.
"""

import datetime as dt
import json

import dagster as dg
import duckdb
import polars as pl

from pipeline import clock
from pipeline.orchestration.partitions import date_key
from pipeline.orchestration.resources import TrackerResource
from sensors.jobs import regrade_job, tick_interval

THRESHOLD = 0.2  # share of harness_error among a partition's evaluations
MAX_RETRIES = 2  # per partition; after that the errors stand and the candles count them
LOOKBACK_DAYS = 14

HARNESS_SHARE_SQL = """
SELECT date::VARCHAR AS date, subject, avg((outcome = 'harness_error')::INT) AS share
FROM ({relation})
WHERE date >= $since
GROUP BY ALL HAVING share > $threshold ORDER BY date, subject
"""


def window_dates(since: dt.date, until: dt.date) -> list[str]:
    return [(since + dt.timedelta(days=n)).isoformat() for n in range((until - since).days + 1)]


def harness_shares(lake, dates: list[str], since: dt.date, threshold: float = THRESHOLD) -> pl.DataFrame:
    """(date, subject, share) of the partitions of `dates` whose harness_error share exceeds
    `threshold`, read from those days' files alone (the lake's own view of them: local or object
    storage, compacted months included)."""
    if not lake.files("evaluations", dates):
        return pl.DataFrame(schema={"date": pl.String, "subject": pl.String, "share": pl.Float64})
    with duckdb.connect() as connection:
        lake.register(connection)
        sql = HARNESS_SHARE_SQL.format(relation=lake.relation("evaluations", dates))
        return connection.sql(sql, params={"since": since, "threshold": threshold}).pl()


@dg.sensor(
    job=regrade_job,
    minimum_interval_seconds=tick_interval(600),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=f"Re-grades (without asking the agent again) partitions of the last {LOOKBACK_DAYS} "
    f"days whose share of harness_error exceeds {THRESHOLD:.0%}, at most {MAX_RETRIES} times each.",
)
def harness_retry_sensor(context: dg.SensorEvaluationContext, tracker: TrackerResource):
    engine = tracker.open()
    today = clock.today(engine.config.timezone)
    since = today - dt.timedelta(days=LOOKBACK_DAYS)
    lake, dates = engine.warehouse.lake, window_dates(since, today + dt.timedelta(days=1))
    if not lake.files("evaluations", dates):
        return dg.SkipReason(f"no evaluations since {since}")
    broken = harness_shares(lake, dates, since)
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
