"""The daily schedules: the day's sample and controls, and every subject's attempts and grading.

Both tick on the tracking config's cron. Candles, changepoints, the report and alerts follow
from the aggregation sensor once the day's runs are done.
"""

import zoneinfo

import dagster as dg

from pipeline.config import load_config
from pipeline.orchestration.partitions import SETTINGS, date_key
from sensors.jobs import daily_job, evaluation_job


def _day(context: dg.ScheduleEvaluationContext) -> str:
    """The tracked day of a tick: its date in the schedule's time zone."""
    tick = context.scheduled_execution_time.astimezone(zoneinfo.ZoneInfo(SETTINGS.timezone))
    return tick.date().isoformat()


@dg.schedule(
    cron_schedule=SETTINGS.cron,
    execution_timezone=SETTINGS.timezone,
    job=daily_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="The day's sample and harness controls (gold and empty patch of every sampled task).",
)
def daily_controls(context: dg.ScheduleEvaluationContext):
    load_config()  # a broken tracking config fails the tick with its message
    day = _day(context)
    return dg.RunRequest(run_key=f"controls:{day}", partition_key=day)


@dg.schedule(
    cron_schedule=SETTINGS.cron,
    execution_timezone=SETTINGS.timezone,
    job=evaluation_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Runs every tracked subject on today's sample; the aggregation sensor turns the "
    "results into candles, changepoints, the report and alerts.",
)
def daily_evaluations(context: dg.ScheduleEvaluationContext):
    day = _day(context)
    known = set(context.instance.get_dynamic_partitions("subject"))
    for subject in load_config().subjects:
        if subject.name not in known:
            context.log.warning(f"subject {subject.name} has no partition yet; the subjects sensor adds it")
            continue
        yield dg.RunRequest(run_key=f"daily:{day}:{subject.name}", partition_key=date_key(day, subject.name))
