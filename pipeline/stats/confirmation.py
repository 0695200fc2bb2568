"""The confirmation rule: an alarm buys fresh trials of its day before anyone is told.

Pure functions for the confirmation sensor to call. The fresh trials share the day's harness and
API conditions but not its binomial luck, so they are scored alone against the baseline the
alarm was judged by; the alarm is confirmed when they point the same way by at least
`threshold` (and, with `survive`, the alarm still stands with them counted), else cleared. A
cleared alarm keeps the baseline (no restart) and restarts the sums at `resume`, so a real
shift that was unlucky once is found again days later, not absorbed into a new baseline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.stats.design import DEFAULT_DESIGN, MonitorDesign
from pipeline.stats.monitor import OnlineMonitor

CONFIRMED, CLEARED = "confirmed", "cleared"


@dataclass(frozen=True)
class ConfirmationRule:
    """How an alarm is confirmed or cleared by trials run after it was raised."""

    trials: int = 3  # fresh trials per task on the alarm's day
    threshold: float = -np.inf  # the fresh trials' z must pass this in the alarm's direction
    survive: bool = True  # and the alarm must still stand once they are counted
    resume: float = 0.0  # where a cleared alarm's sums restart


SENSOR_RULE = ConfirmationRule()  # the sensor before pipeline/stats/: the alarm survives 3 more trials


def confirms(direction: np.ndarray | int, fresh_z: np.ndarray | float, survives: np.ndarray | bool,
             rule: ConfirmationRule) -> np.ndarray:
    """True where an alarm (direction +1 up, -1 down) is confirmed by its fresh trials.

    `fresh_z`: the fresh trials' z against the alarm day's baseline (NaN: none were graded, which
    confirms nothing); `survives`: the alarm is still raised with the fresh trials counted.
    """
    direction, fresh_z = np.asarray(direction), np.asarray(fresh_z, dtype=float)
    with np.errstate(invalid="ignore"):
        pointed = np.where(np.isfinite(fresh_z), direction * fresh_z >= rule.threshold, False)
    return pointed & (np.asarray(survives) | (not rule.survive)) & (direction != 0)


def decision(direction: int, fresh_z: float, survives: bool, rule: ConfirmationRule) -> str:
    """`confirmed` or `cleared` for one alarm."""
    return CONFIRMED if bool(confirms(direction, fresh_z, survives, rule)) else CLEARED


def fresh_evidence(
    successes: np.ndarray, trials: np.ndarray, day: int, fresh_successes: np.ndarray,
    fresh_trials: np.ndarray, design: MonitorDesign = DEFAULT_DESIGN,
    decisions: np.ndarray | None = None, resume: float = 0.0,
) -> tuple[float, int]:
    """One subject's history (days x tasks, the alarm day's trials before the fresh ones) and the
    fresh trials of `day` (tasks): (the fresh trials' z against that day's baseline, and the
    alarm direction with them counted: +1, -1 or 0)."""
    run = OnlineMonitor(np.array(successes[:day + 1]), np.array(trials[:day + 1]), design)
    cleared = None if decisions is None else np.asarray(decisions)[:day + 1] == -1
    for t in range(day):
        run.evaluate(t)
        run.commit(t, None if cleared is None else cleared[t:t + 1], resume)
    fresh = run.scan.score_counts(day, np.array([0]), np.asarray(fresh_successes)[None, :],
                                  np.asarray(fresh_trials)[None, :])
    run.observe(day, np.asarray(fresh_successes)[None, :], np.asarray(fresh_trials)[None, :])
    return float(fresh[0]), int(run.evaluate(day).alarm[0])
