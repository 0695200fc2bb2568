"""The aggregation sensor: the daily loop's second half, candles then changepoints and the report.

A day's candles are requested once its inputs (evaluations of any subject, the day's controls)
changed since its candles were last computed and no run for that day is still queued or
running. A subject whose run failed, or one that was removed, does not hold the others back:
the candles of that day record it as missing. While an asset backfill runs (`candlebench
backfill --queue`, the UI's Materialize), candles wait for it to end, so a window's candles are
one run. After candles change, and once no candles run is
in flight, changepoints and the report follow (alerts and the confirmation sensor read them).
Run keys carry the storage id of the newest input, so a repeated tick requests nothing twice.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable

import dagster as dg
from dagster._core.storage.dagster_run import NOT_FINISHED_STATUSES
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)

from sensors.jobs import candles_job, daily_job, evaluation_job, regrade_job, report_job, tick_interval

INPUTS = (dg.AssetKey("patch_evaluations"), dg.AssetKey("harness_controls"))
CANDLES, CHANGEPOINTS = dg.AssetKey("candles"), dg.AssetKey("changepoints")
DATE_TAG = f"{PARTITION_NAME_TAG}/date"  # a `date x subject` run's date
WRITERS = (daily_job.name, evaluation_job.name, regrade_job.name)  # the jobs that write the inputs


def day_of(partition: str) -> str:
    """The date of a `date` or `date|subject` partition key."""
    return partition.split("|", 1)[0]


def run_days(tags: dict[str, str]) -> set[str]:
    """The days a run works on, from its partition tags (a single day or a range)."""
    if DATE_TAG in tags:
        return {tags[DATE_TAG]}
    if PARTITION_NAME_TAG in tags:
        return {day_of(tags[PARTITION_NAME_TAG])}
    start, end = tags.get(ASSET_PARTITION_RANGE_START_TAG), tags.get(ASSET_PARTITION_RANGE_END_TAG)
    if start and end:
        first, last = dt.date.fromisoformat(day_of(start)), dt.date.fromisoformat(day_of(end))
        return {(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)}
    return set()


def contiguous(days: Iterable[str]) -> list[tuple[str, str]]:
    """Sorted days grouped into (first, last) runs of consecutive dates."""
    spans: list[list[dt.date]] = []
    for day in sorted(dt.date.fromisoformat(d) for d in set(days)):
        if spans and day - spans[-1][1] == dt.timedelta(days=1):
            spans[-1][1] = day
        else:
            spans.append([day, day])
    return [(a.isoformat(), b.isoformat()) for a, b in spans]


def _latest_id(instance: dg.DagsterInstance, key: dg.AssetKey) -> int:
    records = instance.fetch_materializations(key, limit=1).records
    return records[0].storage_id if records else 0


def _backfilling(instance: dg.DagsterInstance) -> bool:
    """Whether an asset backfill is still running: its partitions finish one by one over many
    daemon iterations, so their candles wait for the whole window (one run, not one per wave)."""
    from dagster._core.execution.backfill import BulkActionStatus

    return bool(instance.get_backfills(status=BulkActionStatus.REQUESTED, limit=1))


def _in_flight(instance: dg.DagsterInstance) -> tuple[set[str], bool]:
    """Days with a run writing candles' inputs not yet finished, and whether candles are running."""
    days, candles_running = set(), False
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=NOT_FINISHED_STATUSES)):
        if run.job_name == candles_job.name:
            candles_running = True
        elif run.job_name in WRITERS:
            days |= run_days(run.tags)
    return days, candles_running


@dg.sensor(
    jobs=[candles_job, report_job],
    minimum_interval_seconds=tick_interval(60),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests a day's candles once its evaluations or controls changed and no run for "
    "that day is still going (missing subjects are recorded, never waited for); then changepoints "
    "and the report. This is what turns each day's grading into candles, alarms and alerts.",
)
def aggregation_sensor(context: dg.SensorEvaluationContext):
    state = json.loads(context.cursor) if context.cursor else {}
    seen, pending = state.get("seen", 0), state.get("pending", {})
    instance = context.instance
    for key in INPUTS:
        for partition, storage_id in instance.get_latest_storage_id_by_partition(
            key, dg.DagsterEventType.ASSET_MATERIALIZATION, after_cursor=seen
        ).items():
            day = day_of(partition)
            pending[day] = max(pending.get(day, 0), storage_id)
    seen = max([seen, *pending.values()])
    if pending:  # days whose candles are already newer than their inputs need nothing
        done = instance.get_latest_storage_id_by_partition(
            CANDLES, dg.DagsterEventType.ASSET_MATERIALIZATION, partitions=set(pending)
        )
        pending = {d: i for d, i in pending.items() if done.get(d, 0) < i}
    busy, candles_running = _in_flight(instance)
    if pending and _backfilling(instance):
        busy |= set(pending)  # see _backfilling; the daily loop's days wait as long as it runs
    ready = sorted(set(pending) - busy)
    requests = []
    for first, last in contiguous(ready):
        newest = max(pending[d] for d in pending if first <= d <= last)
        tags = {"candlebench/trigger": "aggregation"}
        if first == last:
            requests.append(
                dg.RunRequest(
                    run_key=f"candles:{first}:{newest}",
                    job_name=candles_job.name,
                    partition_key=first,
                    tags=tags,
                )
            )
        else:
            tags |= {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last}
            requests.append(
                dg.RunRequest(
                    run_key=f"candles:{first}..{last}:{newest}", job_name=candles_job.name, tags=tags
                )
            )
        context.log.info(f"candles for {first}..{last}: inputs changed, no run in flight")
    for day in ready:
        del pending[day]
    candles_id = _latest_id(instance, CANDLES)
    if not requests and not candles_running and candles_id > _latest_id(instance, CHANGEPOINTS):
        requests.append(
            dg.RunRequest(
                run_key=f"report:{candles_id}",
                job_name=report_job.name,
                tags={"candlebench/trigger": "aggregation"},
            )
        )
    if busy & set(pending):
        context.log.info(f"waiting for runs of {', '.join(sorted(busy & set(pending)))}")
    cursor = json.dumps({"seen": seen, "pending": pending}, sort_keys=True)
    return dg.SensorResult(run_requests=requests, cursor=cursor)
