"""The confirmation sensor: a candidate shift buys fresh trials before anyone is told.

When the online detector raises an alarm on a subject's latest day, the sensor asks for
`confirm_trials` fresh trials of that day (once per subject and day). When they are graded and
the detector has run again, it requests that day's `alarm_decisions` partition, which applies
the calibrated rule (`pipeline.stats.confirmation.RULE`): confirmed (and alerted), cleared, or
held for the next day. A held alarm's next day runs with the warning's extra trials (the daily
schedule sees the held decision); once that day is graded and detected, the sensor requests
the decision of that next day's partition, which confirms or clears the held alarm from the
day's own z. That next day does not buy fresh trials of its own (as in benchmarks/loop.py). A
requested day is decided even when newer days have arrived meanwhile: the detector re-runs
over the whole history, so that day's rows answer for it. The sensor itself writes nothing.
"""

import datetime as dt
import json

import dagster as dg
import duckdb
import polars as pl

from assets.decisions import BEFORE_TAG, DIRECTION_TAG, FRESH_TAG, HELD_TAG
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
NEXT_SQL = "SELECT min(date)::VARCHAR FROM monitor WHERE subject = $subject AND date::VARCHAR > $day"
WAITING = ("requested", "decision requested")  # a subject's newer alarm waits for these


def _partition(warehouse, table: str, subject: str, day: str) -> pl.DataFrame | None:
    return warehouse.lake.read_partition(table, subject=subject, date=day)


def _rows(warehouse, table: str, subject: str, day: str) -> int:
    frame = _partition(warehouse, table, subject, day)
    return 0 if frame is None else frame.height


def _graded_since(instance: dg.DagsterInstance, key: dg.MultiPartitionKey) -> float:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("patch_evaluations"), asset_partitions=[str(key)]),
        limit=1,
    ).records
    return records[0].timestamp if records else 0.0


def _days_before(earlier: str, later: str) -> int:
    return (dt.date.fromisoformat(later) - dt.date.fromisoformat(earlier)).days


def _decided(warehouse, state: dict) -> None:
    """Entries whose decision was written: held ones now wait for their next day."""
    for key, entry in state.items():
        if entry["state"] == "decision requested":
            subject, day = key.split("|")
            frame = _partition(warehouse, "decisions", subject, day)
            if frame is not None and frame.height:
                entry["state"] = "held" if frame["decision"][0] == "held" else "decided"


def _next_days(connection, state: dict) -> None:
    """The next scored day of each held alarm, once the detector has one."""
    for key, entry in state.items():
        if entry["state"] == "held" and "next" not in entry:
            subject, day = key.split("|")
            ((found,),) = connection.sql(NEXT_SQL, params={"subject": subject, "day": day}).fetchall()
            if found:
                entry["next"] = found


@dg.sensor(
    jobs=[evaluation_job, decision_job],
    minimum_interval_seconds=tick_interval(300),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="On an online alarm for a subject's latest day, requests fresh trials of that day "
    "(once); after they are graded and the detector re-ran, requests the decision (confirmed and "
    "alerted, cleared, or held for the next day, whose decision it requests once that day is "
    "graded and detected).",
)
def confirmation_sensor(context: dg.SensorEvaluationContext, tracker: TrackerResource):
    engine = tracker.open()
    warehouse = engine.warehouse
    if not warehouse.db_path.exists():
        return dg.SkipReason("no warehouse yet")
    state = json.loads(context.cursor) if context.cursor else {}
    _decided(warehouse, state)
    pending = pl.DataFrame(  # requested earlier, not decided yet: maybe no longer the latest day
        [key.split("|") for key, entry in state.items() if entry["state"] == "requested"],
        schema={"subject": pl.Utf8, "day": pl.Utf8},
        orient="row",
    )
    try:
        with warehouse.connect(read_only=True, wait_s=5) as connection:
            latest = connection.sql(LATEST_SQL).pl()
            connection.register("pending", pending)
            candidates = pl.concat([latest, connection.sql(PENDING_SQL).pl()]).unique(
                ["subject", "day"], keep="first", maintain_order=True
            )
            _next_days(connection, state)
    except (duckdb.IOException, duckdb.CatalogException) as err:
        return dg.SkipReason(f"warehouse busy or not aggregated yet: {err}")
    detected_at = 0.0
    if record := context.instance.get_latest_materialization_event(dg.AssetKey("changepoints")):
        detected_at = record.timestamp

    def detected(subject: str, day: str) -> bool:  # graded, and the detector ran since
        return detected_at > _graded_since(context.instance, date_key(day, subject))

    requests = []
    followed = {(k.split("|")[0], e["next"]) for k, e in state.items() if "next" in e}  # held alarms
    for key, entry in state.items():
        subject, day = key.split("|")
        if entry["state"] == "held" and "next" in entry and detected(subject, entry["next"]):
            entry["state"] = "next decision requested"
            context.log.info(
                f"{subject}: deciding the held {entry['direction']} alarm of {day} "
                f"from {entry['next']}'s own z"
            )
            requests.append(
                dg.RunRequest(
                    run_key=f"decide-next:{key}",
                    job_name=decision_job.name,
                    partition_key=date_key(entry["next"], subject),
                    tags={
                        DIRECTION_TAG: entry["direction"],
                        HELD_TAG: day,
                        "candlebench/trigger": "confirmation",
                    },
                )
            )
    for row in candidates.iter_rows(named=True):
        subject, day = row["subject"], row["day"]
        key = f"{subject}|{day}"
        entry = state.get(key)
        direction = row["direction"]
        if entry is None and direction:
            if (subject, day) in followed:
                continue  # the day after a held alarm: its own z decides that alarm
            if any(
                k.split("|")[0] == subject
                and _days_before(k.split("|")[1], day) in range(1, 3)
                and e["state"] in (*WAITING, "held")
                for k, e in state.items()
            ):
                continue  # yesterday's alarm is not decided yet: ask again later (never for long)
            attempts = _partition(warehouse, "attempts", subject, day)
            before = 0 if attempts is None else attempts.height
            fresh_from = 0 if attempts is None else int(attempts["trial"].max()) + 1
            state[key] = {
                "state": "requested",
                "direction": direction,
                "before": before,
                "fresh_from": fresh_from,
            }
            context.log.info(f"{subject}: {direction} alarm on {day}; asking for fresh trials")
            requests.append(
                dg.RunRequest(
                    run_key=f"confirm:{key}",
                    job_name=evaluation_job.name,
                    partition_key=date_key(day, subject),
                    tags={
                        EXTRA_TRIALS_TAG: str(engine.config.confirm_trials),
                        "candlebench/trigger": "confirmation",
                    },
                )
            )
        elif entry and entry["state"] == "requested":
            after = _rows(warehouse, "evaluations", subject, day)
            if after <= entry["before"] or not detected(subject, day):
                continue  # fresh trials not graded yet, or the detector has not run since
            entry["state"] = "decision requested"
            context.log.info(f"{subject}: fresh trials of {day} graded and detected; deciding the alarm")
            requests.append(
                dg.RunRequest(
                    run_key=f"decide:{key}",
                    job_name=decision_job.name,
                    partition_key=date_key(day, subject),
                    tags={
                        DIRECTION_TAG: entry["direction"],
                        BEFORE_TAG: str(entry["before"]),
                        FRESH_TAG: str(entry.get("fresh_from", 0)),
                        "candlebench/trigger": "confirmation",
                    },
                )
            )
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(state, sort_keys=True))
