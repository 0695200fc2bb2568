"""The version sensor: when a subject's version changes, re-run that subject's current day."""

import json

import dagster as dg

from pipeline import clock
from pipeline.orchestration.partitions import date_key
from pipeline.orchestration.resources import TrackerResource
from sensors.jobs import evaluation_job, tick_interval


@dg.sensor(
    job=evaluation_job,
    minimum_interval_seconds=tick_interval(300),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Polls each subject's version(); on a change requests a re-run of today's "
    "partition with the new version, unless today already ran with it.",
)
def version_sensor(context: dg.SensorEvaluationContext, tracker: TrackerResource):
    engine = tracker.open()
    seen = json.loads(context.cursor) if context.cursor else {}
    today = clock.today(engine.config.timezone)
    requests = []
    for name in [s.name for s in engine.config.subjects]:
        try:
            version = engine.agent(name).version(today)
        except Exception as err:  # one subject's missing CLI or replay file must not stop the others
            context.log.warning(f"{name}: cannot read its version: {err}")
            continue
        previous = seen.get(name)
        seen[name] = version
        known = context.instance.has_dynamic_partition("subject", name)
        stored = engine.lake.read_partition("attempts", subject=name, date=today.isoformat())
        if stored is not None and version in stored["agent_version"].unique().to_list():
            continue  # today already ran with this version (the schedule saw it first): never pay twice
        if previous is not None and previous != version and known:
            context.log.info(f"{name}: version {previous} -> {version}; re-running {today}")
            requests.append(
                dg.RunRequest(
                    run_key=f"version:{name}:{version}:{today}",
                    partition_key=date_key(today.isoformat(), name),
                    tags={
                        "candlebench/trigger": "version",
                        "candlebench/old_version": previous,
                        "candlebench/new_version": version,
                    },
                )
            )
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(seen, sort_keys=True))
