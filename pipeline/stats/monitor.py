"""The online detector: daily z-scores into a two-sided CUSUM with a one-day rule, a warning
line that buys extra trials, and a baseline that restarts after a confirmed alarm.

`OnlineMonitor` runs one day at a time (score, maybe score again with more trials, commit), as
the daily loop and its simulation need; `monitor` runs it over a whole history.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.stats.cusum import CusumPath, cusum_step
from pipeline.stats.design import DEFAULT_DESIGN, MonitorDesign
from pipeline.stats.scores import DailyScores, Scan

CONFIRMED, CLEARED, HELD = 1, -1, 2  # decisions on an alarm; 0: none known (treated as confirmed)


@dataclass(frozen=True)
class Monitor:
    """Daily scores, CUSUM path and warnings of the online detector."""

    scores: DailyScores
    path: CusumPath
    design: MonitorDesign
    warning: np.ndarray  # the statistic carried into the next day is above the warning line
    extra_trials: np.ndarray  # trials per task the next day should add (0 or design.warning_trials)
    cleared: np.ndarray  # an alarm a confirmation cleared: the sums reset, the baseline kept


@dataclass(frozen=True)
class DayDecision:
    """The CUSUM's verdict on one day for every stream, before it is committed."""

    upper: np.ndarray  # sums as computed on the day, before any reset
    lower: np.ndarray
    alarm: np.ndarray  # +1 up, -1 down, 0 none
    one_day: np.ndarray

    @property
    def crossed(self) -> np.ndarray:
        """A CUSUM alarm (not the one-day rule alone)."""
        return (self.alarm != 0) & ~self.one_day


def extra_trials_due(statistic: np.ndarray | float, design: MonitorDesign) -> np.ndarray:
    """Extra trials per task the next day takes: `warning_trials` above the warning line, else 0."""
    return np.where(np.asarray(statistic) > design.warning, design.warning_trials, 0).astype(int)


class OnlineMonitor:
    """The detector over many streams, one day at a time.

    For each day: `observe` adds counts (the day's trials, later perhaps confirmation trials),
    `evaluate` scores the day and returns the CUSUM's tentative decision, and `commit` makes it
    final: a confirmed CUSUM alarm resets the sums and restarts the baseline (a new burn-in, so
    a real shift is not judged for months against the level it left); a cleared one only resets
    the sums to `resume`; a held one (decided the next day) keeps both, and the next day takes
    the warning's extra trials.
    """

    def __init__(self, successes: np.ndarray, trials: np.ndarray, design: MonitorDesign) -> None:
        self.scan = Scan(successes, trials, design)
        self.design = design
        streams, days = self.scan.s.shape[:2]
        self.upper, self.lower = np.zeros(streams), np.zeros(streams)
        self.path = {name: np.zeros((streams, days)) for name in ("upper", "lower", "statistic")}
        self.alarm = np.zeros((streams, days), dtype=int)
        self.one_day = np.zeros((streams, days), dtype=bool)
        self.warning = np.zeros((streams, days), dtype=bool)
        self.cleared = np.zeros((streams, days), dtype=bool)
        self.pending: DayDecision | None = None

    @property
    def streams(self) -> int:
        return self.scan.s.shape[0]

    def observe(
        self, t: int, successes: np.ndarray, trials: np.ndarray, rows: np.ndarray | None = None
    ) -> None:
        """Add counts (streams x tasks, or len(rows) x tasks) to day t, before it is committed."""
        pick = slice(None) if rows is None else rows
        self.scan.s[pick, t] += successes
        self.scan.m[pick, t] += trials

    def evaluate(self, t: int, rows: np.ndarray | None = None) -> DayDecision:
        """Score day t (again, for `rows` only) and return the CUSUM's decision for every stream."""
        self.scan.score(t, rows)
        d = self.design
        z, z_sum = self.scan.scores["z"][:, t], self.scan.scores["z_cusum"][:, t]
        self.pending = DayDecision(
            *cusum_step(self.upper, self.lower, z_sum, d.k, d.h, d.c, z_day=z, clip=d.clip)
        )
        return self.pending

    def commit(
        self, t: int, cleared: np.ndarray | None = None, resume: float = 0.0, held: np.ndarray | None = None
    ) -> DayDecision:
        """Make day t's decision final; `cleared` marks alarms a confirmation rejected, `held`
        alarms whose decision waits for the next day."""
        decision = self.pending if self.pending is not None else self.evaluate(t)
        d = self.design
        held = np.zeros(self.streams, dtype=bool) if held is None else np.asarray(held, bool)
        crossed = decision.crossed & ~held
        cleared = np.zeros(self.streams, dtype=bool) if cleared is None else np.asarray(cleared, bool)
        restart = crossed & ~cleared
        fallback = np.where(cleared & crossed, resume, 0.0)
        self.upper = np.where(crossed, np.minimum(fallback, decision.upper), decision.upper)
        self.lower = np.where(crossed, np.minimum(fallback, decision.lower), decision.lower)
        self.path["upper"][:, t], self.path["lower"][:, t] = self.upper, self.lower
        self.path["statistic"][:, t] = np.maximum(decision.upper, decision.lower)
        self.alarm[:, t], self.one_day[:, t] = decision.alarm, decision.one_day
        self.cleared[:, t] = cleared & (decision.alarm != 0)
        above = np.maximum(self.upper, self.lower) > d.warning
        self.warning[:, t] = above | (held & (decision.alarm != 0))
        z = self.scan.scores["z"][:, t]
        self.scan.admit(t, ~(np.abs(z) > d.c))
        self.scan.restart = np.where(restart, t + 1, self.scan.restart)
        self.scan.burn = np.where(restart, d.restart_burn_in, self.scan.burn)
        self.pending = None
        return decision

    def result(self) -> Monitor:
        lead, days = self.scan.lead, self.scan.s.shape[1]
        shape = (*lead, days)
        path = CusumPath(
            self.path["upper"].reshape(shape),
            self.path["lower"].reshape(shape),
            self.alarm.reshape(shape),
            self.one_day.reshape(shape),
            self.path["statistic"].reshape(shape),
        )
        warning = self.warning.reshape(shape)
        extra = np.where(warning, self.design.warning_trials, 0)
        return Monitor(self.scan.result(), path, self.design, warning, extra, self.cleared.reshape(shape))


def monitor(
    successes: np.ndarray,
    trials: np.ndarray,
    design: MonitorDesign = DEFAULT_DESIGN,
    decisions: np.ndarray | None = None,
    resume: float = 0.0,
) -> Monitor:
    """The online detector over whole histories (..., days, tasks).

    `decisions` (..., days), when known, says which alarms a confirmation cleared (-1: the sums
    reset to `resume`, the baseline kept) or held for the next day (2: nothing reset); every
    other alarm restarts the baseline.
    """
    run = OnlineMonitor(successes, trials, design)
    known = None if decisions is None else np.asarray(decisions).reshape(run.streams, -1)
    for t in range(run.scan.s.shape[1]):
        run.evaluate(t)
        if known is None:
            run.commit(t, resume=resume)
        else:
            run.commit(t, known[:, t] == CLEARED, resume, known[:, t] == HELD)
    return run.result()
