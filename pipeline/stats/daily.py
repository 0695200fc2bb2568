"""The daily loop's statistics over the warehouse, as benchmarks/loop.py simulates them.

- `next_day_trials`: the extra trials each subject's next run takes (adaptive sampling): the
  latest `monitor` row's `extra_trials` (the statistic ended its day above the warning line), or
  the warning's trials when that day's alarm was held for the next day's decision; plus the
  onboarding trials while the subject has fewer than `onboarding_days` days of history.
- `alarm_decision`: an alarm's decision on its own day from its fresh trials, scored alone
  against that day's baseline (`confirmation.decide` with `confirmation.RULE`), and
  `held_decision` the next day's decision on a held alarm from that day's own z
  (`confirmation.decide_next`).
- `known_decisions`: the decisions written so far, as `monitor` takes them back (-1 cleared:
  the sums reset, the baseline kept; 2 held: nothing reset).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from pipeline.grading.outcomes import COUNTED_SQL
from pipeline.stats.confirmation import RULE, ConfirmationRule, decide, decide_next, fresh_evidence
from pipeline.stats.counts import panels
from pipeline.stats.design import DEFAULT_DESIGN, MonitorDesign

CODES = {"confirmed": 1, "cleared": -1, "held": 2}
NAMES = {value: name for name, value in CODES.items()}
DIRECTIONS = {"up": 1, "down": -1}

LATEST_MONITOR_SQL = """
SELECT subject, date::VARCHAR AS date, extra_trials, count(*) OVER (PARTITION BY subject) AS days
FROM monitor WHERE date::VARCHAR < $day
QUALIFY row_number() OVER (PARTITION BY subject ORDER BY date DESC) = 1
"""
# One subject's graded trials per day and task, the trials from `fresh_from` on `day` apart:
# the same rule as the warehouse-wide counts (counted outcomes, tasks whose controls held).
SUBJECT_COUNTS_SQL = f"""
SELECT e.date, e.instance_id AS task, (e.date::VARCHAR = $day AND e.trial >= $fresh_from) AS fresh,
       count(*) FILTER (WHERE e.resolved)::INTEGER AS successes, count(*)::INTEGER AS trials
FROM evaluations e
LEFT JOIN (SELECT DISTINCT date, instance_id FROM controls WHERE NOT ok) b
       ON b.date = e.date AND b.instance_id = e.instance_id
WHERE b.instance_id IS NULL AND e.{COUNTED_SQL} AND e.subject = $subject AND e.date::VARCHAR <= $day
GROUP BY ALL
"""
SUSPECTS_SQL = "SELECT date::VARCHAR AS date FROM harness_suspects"
ALARM_SQL = "SELECT direction FROM alarms WHERE subject = $subject AND date::VARCHAR = $day"
NEXT_Z_SQL = "SELECT z_cusum FROM monitor WHERE subject = $subject AND date::VARCHAR = $day"


@dataclass(frozen=True)
class Decision:
    decision: str  # confirmed | cleared | held
    evidence_z: float | None  # the fresh trials' z (on the alarm's day) or the next day's z
    survives: bool | None  # on the alarm's day: the alarm still stands with the fresh trials counted


def known_decisions(decisions: pl.DataFrame | None) -> dict[str, dict[str, int]]:
    """subject -> date -> code (+1 confirmed, -1 cleared, 2 held) from `decisions` rows."""
    found: dict[str, dict[str, int]] = {}
    if decisions is None or not decisions.height:
        return found
    for row in decisions.select("subject", pl.col("date").cast(pl.String), "decision").iter_rows():
        found.setdefault(row[0], {})[row[1][:10]] = CODES[row[2]]
    return found


def next_day_trials(
    monitor_rows: pl.DataFrame | None,
    decisions: dict[str, dict[str, int]],
    design: MonitorDesign = DEFAULT_DESIGN,
    subjects: tuple[str, ...] = (),
) -> dict[str, tuple[int, str]]:
    """Extra trials per task each subject's next run takes, and why, from each subject's latest
    monitor row before that run's day (`LATEST_MONITOR_SQL`: its days of history too), the
    decisions known so far, and `subjects` (the tracked ones: those without a row are new)."""
    plan: dict[str, list] = {}
    rows = monitor_rows.iter_rows(named=True) if monitor_rows is not None else ()
    seen = {}
    for row in rows:
        subject, day, extra = row["subject"], row["date"], int(row["extra_trials"] or 0)
        seen[subject] = int(row.get("days") or 0)
        if decisions.get(subject, {}).get(day) == CODES["held"]:
            plan[subject] = [design.warning_trials, f"the alarm of {day} is held for the next day's decision"]
        elif extra:
            plan[subject] = [extra, f"the statistic ended {day} above the warning line"]
    for subject in {*subjects, *seen}:
        days = seen.get(subject, 0)
        if design.onboarding_trials and days < design.onboarding_days:
            found = plan.setdefault(subject, [0, ""])
            found[0] += design.onboarding_trials
            why = f"onboarding: {days} of its first {design.onboarding_days} days have run"
            found[1] = f"{found[1]}; {why}" if found[1] else why
    return {subject: (extra, why) for subject, (extra, why) in plan.items() if extra > 0}


def _scalar(connection, sql: str, params: dict):
    rows = connection.sql(sql, params=params).fetchall()
    return rows[0][0] if rows else None


def alarm_decision(
    connection,
    subject: str,
    day: str,
    direction: str,
    fresh_from: int,
    decisions: dict[str, dict[str, int]] | None = None,
    design: MonitorDesign = DEFAULT_DESIGN,
    rule: ConfirmationRule = RULE,
) -> Decision:
    """The decision on `subject`'s `direction` alarm of `day` from the trials numbered `fresh_from`
    on (the fresh trials the alarm bought), over the warehouse the detector just re-ran on."""
    counts = connection.sql(
        SUBJECT_COUNTS_SQL, params={"subject": subject, "day": day, "fresh_from": fresh_from}
    ).pl()
    suspects = {d[:10] for (d,) in connection.sql(SUSPECTS_SQL).fetchall()} - {day}
    counts = counts.filter(~pl.col("date").cast(pl.String).str.slice(0, 10).is_in(list(suspects)))
    fresh = counts.filter("fresh")
    still = _scalar(connection, ALARM_SQL, {"subject": subject, "day": day}) == direction
    sign = DIRECTIONS[direction]
    if not fresh.height:  # nothing graded: the rule clears (decide treats a NaN z so)
        verdict = decide(sign, np.nan, still, rule)
        return Decision(NAMES[int(verdict)], None, still)
    found = panels(
        pl.concat([counts.filter(~pl.col("fresh")), fresh.with_columns(trials=0, successes=0)]).with_columns(
            subject=pl.lit(subject)
        )
    )
    s, m = found.matrices(subject)
    tasks = found.tasks[subject]
    column = {task: j for j, task in enumerate(tasks)}
    fs, fm = np.zeros(len(tasks), np.int64), np.zeros(len(tasks), np.int64)
    for task, successes, trials in fresh.select("task", "successes", "trials").iter_rows():
        fs[column[task]] += successes
        fm[column[task]] += trials
    return fresh_decision(
        s,
        m,
        found.dates[subject],
        day,
        fs,
        fm,
        direction,
        still,
        (decisions or {}).get(subject, {}),
        design,
        rule,
    )


def fresh_decision(
    successes: np.ndarray,
    trials: np.ndarray,
    dates: list[str],
    day: str,
    fresh_successes: np.ndarray,
    fresh_trials: np.ndarray,
    direction: str,
    survives: bool,
    decisions: dict[str, int] | None = None,
    design: MonitorDesign = DEFAULT_DESIGN,
    rule: ConfirmationRule = RULE,
) -> Decision:
    """The rule on one subject's arrays: its history (days x tasks over `dates`, the alarm day's
    ordinary trials only), the fresh trials of `day` (tasks) and earlier decisions (date -> code)."""
    t = dates.index(day)
    known = np.array([(decisions or {}).get(d, 0) for d in dates[:t]] + [0], dtype=int)
    z, _ = fresh_evidence(successes, trials, t, fresh_successes, fresh_trials, design, known, rule.resume)
    verdict = decide(DIRECTIONS[direction], z, survives, rule)
    return Decision(NAMES[int(verdict)], float(z) if np.isfinite(z) else None, survives)


def held_decision(
    connection, subject: str, next_day: str, direction: str, rule: ConfirmationRule = RULE
) -> Decision:
    """The decision on a held alarm from the next day's own z (the z its CUSUM added)."""
    z = _scalar(connection, NEXT_Z_SQL, {"subject": subject, "day": next_day})
    z = float("nan") if z is None else float(z)
    verdict = decide_next(DIRECTIONS[direction], z, rule)
    return Decision(NAMES[int(verdict)], z if np.isfinite(z) else None, None)
