"""The daily loop, simulated: trials chosen from yesterday's statistic (adaptive sampling), an
alarm buying fresh trials of its day (confirmation), the decision, and what that costs.

Drives pipeline.stats.monitor.OnlineMonitor exactly as the pipeline would drive it day by day.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from worlds import TRIALS, Streams

from pipeline.stats.confirmation import ConfirmationRule, confirms
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
    for t in range(days):
        warned[:, t] = extra > 0
        ds, dm = streams.draw(t, loop.trials + extra)
        monitor.observe(t, ds, dm)
        used[:, t] = loop.trials + extra
        first = monitor.evaluate(t)
        raised[:, t] = first.alarm
        cleared = np.zeros(count, bool)
        rows = np.flatnonzero(first.alarm != 0)
        if loop.rule is None:
            confirmed[:, t] = first.alarm
        elif rows.size:
            fs, fm = streams.draw(t, loop.rule.trials, rows)
            fresh_z = monitor.scan.score_counts(t, rows, fs, fm)
            monitor.observe(t, fs, fm, rows)
            again = monitor.evaluate(t, rows)
            used[rows, t] += loop.rule.trials
            ok = confirms(first.alarm[rows], fresh_z, again.alarm[rows] == first.alarm[rows], loop.rule)
            confirmed[rows, t] = np.where(ok, first.alarm[rows], 0)
            cleared[rows] = ~ok
        monitor.commit(t, cleared, loop.rule.resume if loop.rule else 0.0)
        extra = np.where(monitor.warning[:, t], loop.design.warning_trials, 0)
    return LoopRun(raised, confirmed, used, warned)
