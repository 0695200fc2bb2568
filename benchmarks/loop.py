"""The daily loop, simulated: trials chosen from yesterday's statistic (adaptive sampling), an
alarm buying fresh trials of its day (confirmation), the decision, and what that costs.

Drives pipeline.stats.monitor.OnlineMonitor exactly as the pipeline would drive it day by day.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from worlds import TRIALS, Streams

from pipeline.stats.confirmation import ConfirmationRule, decide, decide_next
from pipeline.stats.design import MonitorDesign
from pipeline.stats.monitor import OnlineMonitor


@dataclass(frozen=True)
class Loop:
    """A whole design: the monitor (with its warning line) and, optionally, the confirmation rule."""

    name: str
    design: MonitorDesign
    rule: ConfirmationRule | None = None
    trials: int = TRIALS  # per task on an ordinary day


@dataclass(frozen=True)
class LoopRun:
    alarms: np.ndarray  # streams x days: +1 / -1 raised by the monitor (before confirmation)
    confirmed: np.ndarray  # streams x days: +1 / -1 confirmed alerts (all alarms without a rule)
    trials: np.ndarray  # streams x days: trials per task run that day (ordinary, warned, fresh)
    warned: np.ndarray  # streams x days: the day ran with the warning's extra trials


def run(loop: Loop, streams: Streams) -> LoopRun:
    """Every stream through every day of the loop."""
    count, days, tasks = streams.shape
    s, m = np.zeros((count, days, tasks), np.int32), np.zeros((count, days, tasks), np.int32)
    monitor = OnlineMonitor(s, m, loop.design)
    raised, confirmed = np.zeros((count, days), int), np.zeros((count, days), int)
    used, warned = np.zeros((count, days)), np.zeros((count, days), bool)
    extra = np.zeros(count, int)
    waiting = np.zeros(count, int)  # direction of an alarm held for today's decision
    rule = loop.rule
    for t in range(days):
        warned[:, t] = extra > 0
        ordinary = loop.trials + (loop.design.onboarding_trials if t < loop.design.onboarding_days else 0)
        ds, dm = streams.draw(t, ordinary + extra)
        monitor.observe(t, ds, dm)
        used[:, t] = ordinary + extra
        first = monitor.evaluate(t)
        new = np.where(waiting != 0, 0, first.alarm)  # a held alarm is not raised again
        raised[:, t] = new
        cleared, held = np.zeros(count, bool), np.zeros(count, bool)
        if rule is None:
            confirmed[:, t] = new
        else:
            if (due := np.flatnonzero(waiting)).size:  # yesterday's held alarms: today's own z decides
                verdict = decide_next(waiting[due], monitor.scan.scores["z_cusum"][due, t], rule)
                confirmed[due, t] = np.where(verdict == 1, waiting[due], 0)
                cleared[due] = verdict == -1
            if (rows := np.flatnonzero(new != 0)).size:
                fs, fm = streams.draw(t, rule.trials, rows)
                fresh_z = monitor.scan.score_counts(t, rows, fs, fm)
                monitor.observe(t, fs, fm, rows)
                again = monitor.evaluate(t, rows)
                used[rows, t] += rule.trials
                verdict = decide(new[rows], fresh_z, again.alarm[rows] == new[rows], rule)
                confirmed[rows, t] = np.where(verdict == 1, new[rows], 0)
                cleared[rows], held[rows] = verdict == -1, verdict == 2
        monitor.commit(t, cleared, rule.resume if rule else 0.0, held)
        waiting = np.where(held, new, 0)
        extra = np.where(monitor.warning[:, t], loop.design.warning_trials, 0)
    return LoopRun(raised, confirmed, used, warned)
