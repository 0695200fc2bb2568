"""The daily schedules: the day's sample and controls, and every subject's attempts and grading.

Both tick on the tracking config's cron. Candles, changepoints, the report and alerts follow
from the aggregation sensor once the day's runs are done. A subject whose monitor ended its
latest day above the warning line (or whose alarm that day is held for the next day's
decision) takes the warning's extra trials today: new trials of the same run, numbered after
the ordinary ones, that feed the same statistic.
"""

import zoneinfo

import dagster as dg
import duckdb

from assets.grading import WARNING_REASON_TAG, WARNING_TRIALS_TAG
from pipeline.config import load_config
from pipeline.orchestration.partitions import SETTINGS, date_key
from pipeline.orchestration.resources import TrackerResource
from pipeline.stats.daily import LATEST_MONITOR_SQL, known_decisions, next_day_trials
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
def daily_evaluations(context: dg.ScheduleEvaluationContext, tracker: TrackerResource):
    day = _day(context)
    known = set(context.instance.get_dynamic_partitions("subject"))
    config = load_config()
    plan = warning_plan(context, tracker, day, tuple(s.name for s in config.subjects))
    for subject in config.subjects:
        if subject.name not in known:
            context.log.warning(f"subject {subject.name} has no partition yet; the subjects sensor adds it")
            continue
        tags = {}
        if subject.name in plan:
            extra, why = plan[subject.name]
            tags = {WARNING_TRIALS_TAG: str(extra), WARNING_REASON_TAG: why}
            context.log.info(f"{subject.name}: {extra} extra trials per task today ({why})")
        yield dg.RunRequest(
            run_key=f"daily:{day}:{subject.name}", partition_key=date_key(day, subject.name), tags=tags
        )


def warning_plan(
    context: dg.ScheduleEvaluationContext, tracker: TrackerResource, day: str, subjects: tuple[str, ...]
) -> dict[str, tuple[int, str]]:
    """Extra trials per subject for `day`'s runs, from the monitor as the detector last wrote it
    (no warehouse or no monitor yet: every subject is new, in its onboarding days)."""
    warehouse = tracker.open().warehouse
    if not warehouse.db_path.exists():
        return next_day_trials(None, {}, subjects=subjects)
    try:
        with warehouse.connect(read_only=True, wait_s=20) as connection:
            latest = connection.sql(LATEST_MONITOR_SQL, params={"day": day}).pl()
        decided = (
            warehouse.scan("SELECT subject, date, decision FROM decisions")
            if warehouse.lake.has_files("decisions")
            else None
        )
    except duckdb.CatalogException:  # nothing detected yet
        return next_day_trials(None, {}, subjects=subjects)
    except duckdb.IOException as err:
        context.log.warning(f"no extra trials today: the monitor could not be read ({err})")
        return {}
    return next_day_trials(latest, known_decisions(decided), subjects=subjects)
