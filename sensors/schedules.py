"""The daily schedule: every subject's attempts and grading for today."""

import dagster as dg

from pipeline.config import load_config
from pipeline.partitions import date_key
from sensors.jobs import evaluation_job

_config = load_config()


@dg.schedule(
    cron_schedule=_config.cron,
    execution_timezone=_config.timezone,
    job=evaluation_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Runs every tracked subject on today's sample; candles, changepoints and the "
    "report follow by declarative automation.",
)
def daily_evaluations(context: dg.ScheduleEvaluationContext):
    day = context.scheduled_execution_time.date().isoformat()
    known = set(context.instance.get_dynamic_partitions("subject"))
    for subject in load_config().subjects:
        if subject.name not in known:
            context.log.warning(f"subject {subject.name} has no partition yet; the subjects sensor adds it")
            continue
        yield dg.RunRequest(
            run_key=f"daily:{day}:{subject.name}",
            partition_key=date_key(day, subject.name),
        )
