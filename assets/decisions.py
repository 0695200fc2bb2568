"""The confirmation's decision on an online alarm, and the alert it sends when confirmed.

The confirmation sensor asks for extra trials of an alarm's day; once they are graded and
changepoints ran again, it requests this asset's partition. The decision is written to the
lake's `decisions` table; a confirmed shift is what reaches the alert webhooks.
"""

import dagster as dg

from assets.aggregates import changepoints
from pipeline import clock
from pipeline.orchestration.partitions import date_by_subject, keys_of
from pipeline.orchestration.resources import TrackerResource
from pipeline.report.alerts import Notifier, decide, shift_alert
from pipeline.store.rows import decision_frame

DIRECTION_TAG = "candlebench/direction"  # the alarm's direction when extra trials were asked for
BEFORE_TAG = "candlebench/attempts_before"  # the day's attempts before the extra trials

ALARM_SQL = "SELECT * FROM alarms WHERE subject = $subject AND date::VARCHAR = $day"
VERDICT_SQL = "SELECT * FROM verdicts WHERE subject = $subject"


@dg.asset(
    group_name="aggregates",
    kinds={"parquet"},
    owners=["team:evals"],
    partitions_def=date_by_subject,
    deps=[changepoints],
    description="For an online alarm whose day got extra trials: `confirmed` when the detector, "
    "re-run with them, still alarms that day in the same direction, else `cleared`. A confirmed "
    "shift is sent to the alert webhooks, once.",
)
def alarm_decisions(context: dg.AssetExecutionContext, tracker: TrackerResource) -> dg.MaterializeResult:
    day, subject = keys_of(context)
    requested = context.run.tags.get(DIRECTION_TAG)
    if requested not in ("up", "down"):
        raise dg.Failure(f"{subject} {day}: no alarm direction in tag {DIRECTION_TAG}: the "
                         "confirmation sensor requests this asset after asking for extra trials")
    engine = tracker.open()
    params = {"subject": subject, "day": day}
    with engine.warehouse.connect(read_only=True) as connection:
        alarms = connection.sql(ALARM_SQL, params=params).pl()
        verdicts = connection.sql(VERDICT_SQL, params={"subject": subject}).pl()
    now = alarms.row(0, named=True) if alarms.height else None
    decision = decide(requested, now["direction"] if now else None)
    graded = engine.lake.read_partition("evaluations", subject=subject, date=day)
    engine.lake.write_partition("decisions", decision_frame(
        subject=subject, date=day, direction=requested, decision=decision,
        extra_trials=engine.config.confirm_trials, attempts_before=int(context.run.tags.get(BEFORE_TAG, 0)),
        attempts_after=0 if graded is None else graded.height,
        decided_at=clock.now(engine.config.timezone).replace(tzinfo=None)), subject=subject, date=day)
    sent = []
    if decision == "confirmed":
        alert = shift_alert(subject, day, requested, now, verdicts.row(0, named=True) if verdicts.height
                            else None)
        sent, failed = Notifier(list(engine.config.alerts), engine.home / "alerts-sent.log").send([alert])
        for problem in failed:
            context.log.warning(f"alert not delivered: {problem}")
    context.log.info(f"{subject}: the {requested} alarm on {day} is {decision}")
    return dg.MaterializeResult(metadata={"decision": decision, "direction": requested,
                                          "alerts_sent": len(sent)})
