"""The confirmation's decision on an online alarm, and the alert it sends when confirmed.

The rule is `pipeline.stats.confirmation.RULE`, the one benchmarks/calibration.py calibrates
(so its confirmed-alert figures describe this asset): on the alarm's day the fresh trials the
alarm bought are scored alone against that day's baseline and `decide` says confirmed, cleared
or held; a held alarm is decided on the next day from that day's own z (`decide_next`). The
decision is written to the lake's `decisions` table (a held alarm's final decision in the next
day's row), which the detector reads back; a confirmed shift is what reaches the webhooks,
with its attribution (model, agent harness, evaluation harness, provider or the subject alone,
`pipeline.stats.attribution`) from the tables the changepoints asset last wrote.
"""

import dagster as dg

from assets.aggregates import changepoints
from pipeline import clock
from pipeline.orchestration.partitions import date_by_subject, keys_of
from pipeline.orchestration.resources import TrackerResource
from pipeline.report.alerts import Notifier, shift_alert
from pipeline.stats.daily import alarm_decision, held_decision
from pipeline.stats.evidence import read_decisions, shift_attribution
from pipeline.stats.warehouse import decisions_of
from pipeline.store.rows import decision_frame

DIRECTION_TAG = "candlebench/direction"  # the alarm's direction when extra trials were asked for
BEFORE_TAG = "candlebench/attempts_before"  # the day's attempts before the extra trials
FRESH_TAG = "candlebench/fresh_from"  # the first trial number of the alarm's fresh trials
HELD_TAG = "candlebench/held_alarm"  # deciding the next day of the held alarm of this date

ALARM_SQL = "SELECT * FROM alarms WHERE subject = $subject AND date::VARCHAR = $day"
VERDICT_SQL = "SELECT * FROM verdicts WHERE subject = $subject"


@dg.asset(
    group_name="aggregates",
    kinds={"parquet"},
    owners=["team:evals"],
    partitions_def=date_by_subject,
    deps=[changepoints],
    description="For an online alarm whose day got fresh trials: `confirmed` when they alone point "
    "the alarm's way strongly (z beyond 2.0), `held` for the next day when they point that way at "
    "all, else `cleared`; a held alarm is confirmed the next day when that day's own z points the "
    "same way by 0.75 (the rule benchmarks/calibration.py calibrates). A confirmed shift is sent "
    "to the alert webhooks, once.",
)
def alarm_decisions(context: dg.AssetExecutionContext, tracker: TrackerResource) -> dg.MaterializeResult:
    day, subject = keys_of(context)
    tags = context.run.tags
    requested, held_from = tags.get(DIRECTION_TAG), tags.get(HELD_TAG)
    if requested not in ("up", "down"):
        raise dg.Failure(
            f"{subject} {day}: no alarm direction in tag {DIRECTION_TAG}: the "
            "confirmation sensor requests this asset after asking for extra trials"
        )
    engine = tracker.open()
    alarm_day = held_from or day
    attribution = None
    with engine.warehouse.connect(read_only=True) as connection:
        if held_from:
            decided = held_decision(connection, subject, day, requested)
        else:
            known = decisions_of(connection) if engine.warehouse.lake.has_files("decisions") else {}
            decided = alarm_decision(connection, subject, day, requested, int(tags.get(FRESH_TAG, 0)), known)
        alarms = connection.sql(ALARM_SQL, params={"subject": subject, "day": alarm_day}).pl()
        verdicts = connection.sql(VERDICT_SQL, params={"subject": subject}).pl()
        if decided.decision == "confirmed":  # what the other lanes, the controls and the releases say
            attribution = shift_attribution(
                connection, engine.lanes, subject, alarm_day, requested, read_decisions(connection)
            )
    graded = engine.lake.read_partition("evaluations", subject=subject, date=day)
    engine.lake.write_partition(
        "decisions",
        decision_frame(
            subject=subject,
            date=day,
            direction=requested,
            decision=decided.decision,
            extra_trials=0 if held_from else engine.config.confirm_trials,
            attempts_before=int(tags.get(BEFORE_TAG, 0)),
            attempts_after=0 if graded is None else graded.height,
            decided_at=clock.now(engine.config.timezone).replace(tzinfo=None),
            alarm_date=alarm_day,
            evidence_z=decided.evidence_z,
            attribution=attribution.label if attribution else None,
            attribution_reason=attribution.reason if attribution else None,
        ),
        subject=subject,
        date=day,
    )
    sent = []
    if decided.decision == "confirmed":
        now = (
            alarms.row(0, named=True)
            if alarms.height
            else {"difference": float("nan"), "z": float("nan"), "rule": "alarm"}
        )
        alert = shift_alert(
            subject,
            alarm_day,
            requested,
            now,
            verdicts.row(0, named=True) if verdicts.height else None,
            confirmed_on=day,
            attribution=(attribution.label, attribution.reason) if attribution else None,
        )
        sent, failed = Notifier(list(engine.config.alerts), engine.home / "alerts-sent.log").send([alert])
        for problem in failed:
            context.log.warning(f"alert not delivered: {problem}")
    context.log.info(
        f"{subject}: the {requested} alarm of {alarm_day} is {decided.decision} (z {decided.evidence_z})"
    )
    return dg.MaterializeResult(
        metadata={
            "decision": decided.decision,
            "direction": requested,
            "alarm_date": alarm_day,
            "evidence_z": decided.evidence_z if decided.evidence_z is not None else float("nan"),
            "alerts_sent": len(sent),
            "attribution": attribution.label if attribution else "",
            "attribution_reason": attribution.reason if attribution else "",
        }
    )
