"""The confirmation rule: an alarm buys fresh trials of its day before anyone is told.

Pure functions for the confirmation sensor to call. The fresh trials share the day's harness and
API conditions but not its binomial luck, so they are scored alone against the baseline the
alarm was judged by. The alarm is confirmed when they point the same way by at least
`threshold` (and, with `survive`, the alarm still stands with them counted). Fresh trials
cannot tell a shift from a bad day (they share it), so with `hold` a middling answer waits
for the next day, which runs with extra trials and confirms when its own z points the same
way by `next_threshold`; everything else is cleared. A cleared alarm keeps the baseline (no
restart) and restarts the sums at `resume`, so a real shift that was unlucky once is found
again days later, not absorbed into a new baseline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.stats.design import DEFAULT_DESIGN, MonitorDesign
from pipeline.stats.monitor import OnlineMonitor

CONFIRMED, CLEARED, HELD = "confirmed", "cleared", "held"


@dataclass(frozen=True)
class ConfirmationRule:
    """How an alarm is confirmed or cleared by trials run after it was raised."""

    trials: int = 3  # fresh trials per task on the alarm's day
    threshold: float = -np.inf  # the fresh trials' z must pass this in the alarm's direction
    survive: bool = True  # and the alarm must still stand once they are counted
    resume: float = 0.0  # where a cleared alarm's sums restart
    hold: bool = False  # fresh z between `floor` and `threshold`: decide on the next day
    floor: float = 0.0
    next_threshold: float = 1.0  # the next day's z (in the alarm's direction) that confirms


SENSOR_RULE = ConfirmationRule()  # the sensor before pipeline/stats/: the alarm survives 3 more trials
# Calibrated with design.DESIGN: 12 fresh trials per task (alarms are rare: a fraction of a
# percent of days); confirmed at once when they alone point the alarm's way by 2.0 (a 13-point
# drop does), held for the next day when they point that way at all, and then confirmed when that
# day's own z does by 0.75; else cleared.
RULE = ConfirmationRule(trials=12, threshold=2.0, survive=False, hold=True, floor=0.0, next_threshold=0.75)


def decide(
    direction: np.ndarray | int,
    fresh_z: np.ndarray | float,
    survives: np.ndarray | bool,
    rule: ConfirmationRule,
) -> np.ndarray:
    """Each alarm's decision on its own day (direction +1 up, -1 down): +1 confirmed, -1 cleared,
    2 held for the next day (see `decide_next`).

    `fresh_z`: the fresh trials' z against the alarm day's baseline (NaN: none were graded);
    `survives`: the alarm is still raised with the fresh trials counted.
    """
    direction, fresh_z = np.asarray(direction), np.asarray(fresh_z, dtype=float)
    pointed = np.where(np.isfinite(fresh_z), direction * np.nan_to_num(fresh_z), -np.inf)
    standing = np.asarray(survives) | (not rule.survive)
    confirmed = (pointed >= rule.threshold) & standing & (direction != 0)
    held = rule.hold & ~confirmed & (pointed >= rule.floor) & (direction != 0)
    return np.where(confirmed, 1, np.where(held, 2, -1))


def decide_next(
    direction: np.ndarray | int, next_z: np.ndarray | float, rule: ConfirmationRule
) -> np.ndarray:
    """A held alarm's decision on the next day from that day's own z: +1 confirmed, -1 cleared."""
    direction, next_z = np.asarray(direction), np.asarray(next_z, dtype=float)
    pointed = np.where(np.isfinite(next_z), direction * np.nan_to_num(next_z), -np.inf)
    return np.where((pointed >= rule.next_threshold) & (direction != 0), 1, -1)


def confirms(
    direction: np.ndarray | int,
    fresh_z: np.ndarray | float,
    survives: np.ndarray | bool,
    rule: ConfirmationRule,
) -> np.ndarray:
    """True where an alarm is confirmed on its own day."""
    return decide(direction, fresh_z, survives, rule) == 1


def decision(
    direction: int, fresh_z: float, survives: bool, rule: ConfirmationRule, next_z: float | None = None
) -> str:
    """`confirmed`, `cleared` or `held` for one alarm: on its day, or (with `next_z`) the day after."""
    if next_z is not None:
        value = decide_next(direction, next_z, rule)
    else:
        value = decide(direction, fresh_z, survives, rule)
    return {1: CONFIRMED, -1: CLEARED, 2: HELD}[int(value)]


def fresh_evidence(
    successes: np.ndarray,
    trials: np.ndarray,
    day: int,
    fresh_successes: np.ndarray,
    fresh_trials: np.ndarray,
    design: MonitorDesign = DEFAULT_DESIGN,
    decisions: np.ndarray | None = None,
    resume: float = 0.0,
) -> tuple[float, int]:
    """One subject's history (days x tasks, the alarm day's trials before the fresh ones) and the
    fresh trials of `day` (tasks): (the fresh trials' z against that day's baseline, and the
    alarm direction with them counted: +1, -1 or 0). `decisions` (days) are earlier days'
    decisions as `monitor` takes them (-1 cleared, 2 held)."""
    run = OnlineMonitor(np.array(successes[: day + 1]), np.array(trials[: day + 1]), design)
    known = np.zeros(day + 1, dtype=int) if decisions is None else np.asarray(decisions)[: day + 1]
    for t in range(day):
        run.evaluate(t)
        run.commit(t, known[t : t + 1] == -1, resume, known[t : t + 1] == 2)
    fresh = run.scan.score_counts(
        day, np.array([0]), np.asarray(fresh_successes)[None, :], np.asarray(fresh_trials)[None, :]
    )
    run.observe(day, np.asarray(fresh_successes)[None, :], np.asarray(fresh_trials)[None, :])
    return float(fresh[0]), int(run.evaluate(day).alarm[0])
