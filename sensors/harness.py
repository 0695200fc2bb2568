"""The harness-retry sensor: re-grade partitions whose failures were the harness's, not the agent's.

A tick reads the lookback window's partition files only (named one by one, never a glob of the
whole lake), so its cost does not grow with the history kept.
"""

import datetime as dt
import json
from pathlib import Path

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
FROM read_parquet($files, hive_partitioning = false)
WHERE date >= $since
GROUP BY ALL HAVING share > $threshold ORDER BY date, subject
"""


def window_files(lake, table: str, since: dt.date, until: dt.date) -> list[Path]:
    """The (subject, date) partition files of `table` dated `since`..`until`: one lookup per
    subject and day of the window, whatever the lake holds besides."""
    top = lake.root / table
    subjects = sorted(p.name.removeprefix("subject=") for p in top.glob("subject=*")) if top.is_dir() else []
    days = [since + dt.timedelta(days=n) for n in range((until - since).days + 1)]
    found = (lake.partition_path(table, subject=s, date=d) for s in subjects for d in days)
    return [path for path in found if path.exists()]


def harness_shares(files: list[Path], since: dt.date, threshold: float = THRESHOLD) -> pl.DataFrame:
    """(date, subject, share) of the partitions among `files` whose harness_error share exceeds
    `threshold`."""
    if not files:
        return pl.DataFrame(schema={"date": pl.String, "subject": pl.String, "share": pl.Float64})
    with duckdb.connect() as connection:
        params = {"files": [str(f) for f in files], "since": since, "threshold": threshold}
        return connection.sql(HARNESS_SHARE_SQL, params=params).pl()


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
    files = window_files(engine.warehouse.lake, "evaluations", since, today + dt.timedelta(days=1))
    if not files:
        return dg.SkipReason(f"no evaluations since {since}")
    broken = harness_shares(files, since)
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
