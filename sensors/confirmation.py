"""The confirmation sensor: a candidate shift buys extra trials before anyone is told.

When the online detector raises an alarm on a subject's latest day, the sensor asks for
`confirm_trials` more trials of that day (once per subject and day). When they are graded and
the detector has run again, it requests that day's `alarm_decisions` partition, which decides
whether the alarm survived the extra data (confirmed, and alerted) or not (cleared). A requested
day is decided even when newer days have arrived meanwhile: the detector re-runs over the whole
history, so that day's row in `alarms` answers for it. The sensor itself writes nothing.
"""

import json

import dagster as dg
import duckdb
import polars as pl

from assets.decisions import BEFORE_TAG, DIRECTION_TAG
from assets.grading import EXTRA_TRIALS_TAG
from pipeline.orchestration.partitions import date_key
from pipeline.orchestration.resources import TrackerResource
from sensors.jobs import decision_job, evaluation_job, tick_interval

LATEST_SQL = """
SELECT c.subject, c.day, a.direction FROM
  (SELECT subject, max(date)::VARCHAR AS day FROM candles GROUP BY ALL) c
LEFT JOIN alarms a ON a.subject = c.subject AND a.date = c.day
"""
PENDING_SQL = """
SELECT p.subject, p.day, a.direction FROM pending p
LEFT JOIN alarms a ON a.subject = p.subject AND a.date::VARCHAR = p.day
"""


def _rows(warehouse, table: str, subject: str, day: str) -> int:
    frame = warehouse.lake.read_partition(table, subject=subject, date=day)
    return 0 if frame is None else frame.height


def _graded_since(instance: dg.DagsterInstance, key: dg.MultiPartitionKey) -> float:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("patch_evaluations"), asset_partitions=[str(key)]),
        limit=1,
    ).records
    return records[0].timestamp if records else 0.0


@dg.sensor(
    jobs=[evaluation_job, decision_job],
    minimum_interval_seconds=tick_interval(300),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="On an online alarm for a subject's latest day, requests extra trials of that day "
    "(once); after they are graded and the detector re-ran, requests the decision (confirmed, and "
    "alerted, or cleared).",
)
def confirmation_sensor(context: dg.SensorEvaluationContext, tracker: TrackerResource):
    engine = tracker.open()
    warehouse = engine.warehouse
    if not warehouse.db_path.exists():
        return dg.SkipReason("no warehouse yet")
    state = json.loads(context.cursor) if context.cursor else {}
    pending = pl.DataFrame(  # requested earlier, not decided yet: maybe no longer the latest day
        [key.split("|") for key, entry in state.items() if entry["state"] == "requested"],
        schema={"subject": pl.Utf8, "day": pl.Utf8}, orient="row",
    )
    try:
        with warehouse.connect(read_only=True, wait_s=5) as connection:
            latest = connection.sql(LATEST_SQL).pl()
            connection.register("pending", pending)
            candidates = pl.concat([latest, connection.sql(PENDING_SQL).pl()]).unique(
                ["subject", "day"], keep="first", maintain_order=True)
    except (duckdb.IOException, duckdb.CatalogException) as err:
        return dg.SkipReason(f"warehouse busy or not aggregated yet: {err}")
    detected_at = 0.0
    if record := context.instance.get_latest_materialization_event(dg.AssetKey("changepoints")):
        detected_at = record.timestamp
    requests = []
    for row in candidates.iter_rows(named=True):
        subject, day = row["subject"], row["day"]
        key = f"{subject}|{day}"
        entry = state.get(key)
        direction = row["direction"]
        if entry is None and direction:
            before = _rows(warehouse, "attempts", subject, day)
            state[key] = {"state": "requested", "direction": direction, "before": before}
            context.log.info(f"{subject}: {direction} alarm on {day}; asking for more trials")
            requests.append(dg.RunRequest(
                run_key=f"confirm:{key}", job_name=evaluation_job.name,
                partition_key=date_key(day, subject),
                tags={EXTRA_TRIALS_TAG: str(engine.config.confirm_trials),
                      "candlebench/trigger": "confirmation"},
            ))
        elif entry and entry["state"] == "requested":
            after = _rows(warehouse, "evaluations", subject, day)
            graded = _graded_since(context.instance, date_key(day, subject))
            if after <= entry["before"] or detected_at <= graded:
                continue  # extra trials not graded yet, or the detector has not run since
            entry["state"] = "decision requested"
            context.log.info(f"{subject}: extra trials of {day} graded and detected; deciding the alarm")
            requests.append(dg.RunRequest(
                run_key=f"decide:{key}", job_name=decision_job.name, partition_key=date_key(day, subject),
                tags={DIRECTION_TAG: entry["direction"], BEFORE_TAG: str(entry["before"]),
                      "candlebench/trigger": "confirmation"},
            ))
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(state, sort_keys=True))
