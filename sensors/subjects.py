"""The subjects sensor: every subject in the tracking config gets its `subject` partition."""

import dagster as dg

from pipeline.orchestration.partitions import subject
from pipeline.orchestration.resources import TrackerResource
from sensors.jobs import tick_interval


@dg.sensor(
    minimum_interval_seconds=tick_interval(60),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Adds a dynamic `subject` partition when a subject is added to the tracking config.",
)
def subjects_sensor(context: dg.SensorEvaluationContext, tracker: TrackerResource):
    names = [s.name for s in tracker.open().config.subjects]
    missing = [n for n in names if not context.instance.has_dynamic_partition("subject", n)]
    removed = sorted(set(context.instance.get_dynamic_partitions("subject")) - set(names))
    if removed:  # no longer scheduled; their partitions and rows stay until retired
        context.log.warning(
            f"subjects no longer in the tracking config: {', '.join(removed)}; "
            f"`candlebench subjects retire {' '.join(removed)}` removes their partitions"
        )
    if not missing:
        return dg.SkipReason(
            "every configured subject has its partition"
            + (f"; not configured any more: {', '.join(removed)}" if removed else "")
        )
    context.log.info(f"adding subject partitions: {', '.join(missing)}")
    return dg.SensorResult(dynamic_partitions_requests=[subject.build_add_request(missing)])
