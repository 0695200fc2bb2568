"""Two-sided Gaussian CUSUM on daily z-scores with a one-day rule, and its run lengths
(Brook & Evans' Markov chain; Siegmund's closed form for cross-checks)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from pipeline.stats.design import MonitorDesign

DAYS_PER_YEAR = 365.0


@dataclass(frozen=True)
class CusumPath:
    """CUSUM sums after each day and the alarms raised (+1 up, -1 down, 0 none)."""

    upper: np.ndarray  # carried into the next day: reset to 0 after a CUSUM alarm
    lower: np.ndarray
    alarm: np.ndarray
    one_day: np.ndarray  # the alarm came from the one-day rule alone (the sums were not reset)
    statistic: np.ndarray  # max(upper, lower) as computed on the day, before any reset


def cusum_step(
    upper: np.ndarray,
    lower: np.ndarray,
    z: np.ndarray,
    k: float,
    h: float,
    c: float,
    z_day: np.ndarray | None = None,
    clip: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One day of the two-sided CUSUM: sums before any reset, alarm sign, one-day flag.

    The sums see z clipped to +-c: a single extreme day is the one-day rule's to report, and
    (with c - k < h) cannot trip the CUSUM on its own. A missing day (NaN) leaves the sums where
    they were. The one-day rule reads `z_day` when given (the day's own z), else `z`; the sums
    clip at `clip` when given.
    """
    seen = np.isfinite(z)
    value = np.where(seen, z, 0.0)
    day = value if z_day is None else np.where(np.isfinite(z_day), z_day, 0.0)
    limit = c if clip is None else clip
    clipped = np.clip(value, -limit, limit)
    upper = np.where(seen, np.maximum(0.0, upper + clipped - k), upper)
    lower = np.where(seen, np.maximum(0.0, lower - clipped - k), lower)
    crossed = (upper > h) | (lower > h)
    jump = np.abs(day) > c
    sign = np.where(upper > h, 1, np.where(lower > h, -1, np.where(jump, np.sign(day), 0))).astype(int)
    return upper, lower, sign, jump & ~crossed


def cusum(z: np.ndarray, k: float, h: float, c: float = math.inf) -> CusumPath:
    """Two-sided Gaussian CUSUM on z-scores (last axis = days) with a one-day rule |z| > c.

    S+ = max(0, S+ + z - k), S- = max(0, S- - z - k) with z clipped to +-c; an alarm when
    either exceeds h resets both. A one-day alarm leaves the sums alone.
    """
    z = np.asarray(z, dtype=float)
    upper_path, lower_path, statistic = np.zeros_like(z), np.zeros_like(z), np.zeros_like(z)
    alarm, one_day = np.zeros(z.shape, dtype=int), np.zeros(z.shape, dtype=bool)
    upper, lower = np.zeros(z.shape[:-1]), np.zeros(z.shape[:-1])
    for t in range(z.shape[-1]):
        upper, lower, alarm[..., t], one_day[..., t] = cusum_step(upper, lower, z[..., t], k, h, c)
        statistic[..., t] = np.maximum(upper, lower)
        crossed = (alarm[..., t] != 0) & ~one_day[..., t]
        upper, lower = np.where(crossed, 0.0, upper), np.where(crossed, 0.0, lower)
        upper_path[..., t], lower_path[..., t] = upper, lower
    return CusumPath(upper_path, lower_path, alarm, one_day, statistic)


def cusum_arl(k: float, h: float, shift: float = 0.0, c: float = math.inf, states: int = 400) -> float:
    """Average run length of the one-sided upper CUSUM (with one-day rule z > c) on N(shift, 1) days.

    Brook & Evans' Markov chain: [0, h] cut into `states` cells, state 0 being the sum at zero.
    """
    width = 2.0 * h / (2 * states - 1)
    centres = np.arange(states) * width
    edges = (np.arange(states + 1) - 0.5) * width  # cell j spans edges[j], edges[j + 1]
    edges[0] = -np.inf
    # z needed to land in cell j from centre i: edges - centre + k; z above c alarms anyway.
    bounds = np.minimum(edges[None, :] - centres[:, None] + k, c)
    cdf = stats.norm.cdf(bounds, loc=shift)
    transition = np.diff(cdf, axis=1)
    run = np.linalg.solve(np.eye(states) - transition, np.ones(states))
    return float(run[0])


def siegmund_arl(k: float, h: float, shift: float = 0.0) -> float:
    """Siegmund's closed-form ARL approximation of the one-sided CUSUM, for cross-checks."""
    delta, b = shift - k, h + 1.166
    if abs(delta) < 1e-9:
        return b * b
    return (math.exp(-2 * delta * b) + 2 * delta * b - 1) / (2 * delta * delta)


def false_alarms_per_year(design: MonitorDesign) -> float:
    """In-control alarms per year, both sides with their one-day rules (sides nearly exclusive)."""
    return 2.0 * DAYS_PER_YEAR / cusum_arl(design.k, design.h, 0.0, design.c)


def time_above(k: float, h: float, level: float, c: float = math.inf, states: int = 400) -> float:
    """Long-run share of in-control days the one-sided sum ends above `level` (< h), renewal at alarms.

    The stationary law of Brook & Evans' chain with alarms returning to 0: the warning line's
    cost, as the share of days that buy extra trials (per side).
    """
    width = 2.0 * h / (2 * states - 1)
    centres = np.arange(states) * width
    edges = (np.arange(states + 1) - 0.5) * width
    edges[0] = -np.inf
    bounds = np.minimum(edges[None, :] - centres[:, None] + k, c)
    cdf = stats.norm.cdf(bounds)
    transition = np.diff(cdf, axis=1)
    transition[:, 0] += 1.0 - transition.sum(axis=1)  # an alarm (or z > c) restarts at 0
    values, vectors = np.linalg.eig(transition.T)
    stationary = np.real(vectors[:, np.argmin(np.abs(values - 1.0))])
    stationary /= stationary.sum()
    return float(stationary[centres > level].sum())
