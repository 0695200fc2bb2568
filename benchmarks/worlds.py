"""Simulated fixed panels for calibration: a grid of plausible worlds, not one.

Each stream is one subject: a panel of tasks with per-task pass rates (Beta with an intra-task
correlation), a day-level effect on the logit scale (independent, autocorrelated or
heavy-tailed, 0.5-1.5 points unless stated), missing task-days and days, and optionally tasks
that differ in how much the day moves them, task x day noise, and a panel that rotates.
Shifts lower the mean pass rate by the stated points on the logit scale of every task.

`Streams.draw(t, trials)` draws day t's outcomes for any number of trials per task, so a design
that decides tomorrow's trials from today's statistic can be simulated day by day.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, logit

TASKS, TRIALS = 50, 3
LOST = 0.01  # share of trials lost to harness errors


@dataclass(frozen=True)
class World:
    name: str
    noise: str = "normal"  # day effects: normal (independent), ar1, or t3 (Student t, 3 df)
    phi: float = 0.0  # ar1: correlation of neighbouring days
    tau: tuple[float, float] = (0.005, 0.015)  # sd of the day effect, in pass-rate units
    icc: tuple[float, float] = (0.3, 0.8)
    mean: tuple[float, float] = (0.25, 0.65)
    sensitivity: float = 0.0  # sd of each task's multiplier on the day effect (mean 1)
    task_day: float = 0.0  # sd of independent task x day effects, logit scale
    missing_cells: tuple[float, float] = (0.0, 0.06)  # share of task-days absent, per stream
    missing_days: float = 0.0  # share of days with no data at all, in outages of 1-5 days
    rotation: int = 0  # every `rotation` days ...
    rotated: float = 0.0  # ... this share of the panel is replaced by new tasks
    description: str = ""


GRID = (
    World("independent", description="day effects independent (the original simulation)"),
    World("ar1 0.5", noise="ar1", phi=0.5, description="day effects AR(1), phi 0.5"),
    World("ar1 0.8", noise="ar1", phi=0.8, description="day effects AR(1), phi 0.8"),
    World("heavy tails", noise="t3", description="day effects Student t, 3 df"),
    World("large day noise", tau=(0.015, 0.03), description="day effects 1.5-3 points"),
    World(
        "heterogeneous",
        icc=(0.05, 0.95),
        mean=(0.08, 0.92),
        sensitivity=0.7,
        task_day=0.4,
        description="ICC 0.05-0.95, rates 8-92%, tasks moved unequally by the day, task x day noise",
    ),
    World(
        "missing",
        missing_cells=(0.05, 0.25),
        missing_days=0.1,
        description="5-25% of task-days and 10% of days missing (outages of 1-5 days)",
    ),
    World("panel changes", rotation=30, rotated=0.2, description="20% of the panel replaced every 30 days"),
    World(
        "everything",
        noise="ar1",
        phi=0.5,
        icc=(0.05, 0.95),
        mean=(0.08, 0.92),
        sensitivity=0.7,
        task_day=0.4,
        missing_cells=(0.05, 0.25),
        missing_days=0.1,
        rotation=30,
        rotated=0.2,
        description="AR(1) 0.5, heterogeneous, missing and rotating together",
    ),
)
BASE = GRID[0]


def _unit_noise(world: World, rng: np.random.Generator, streams: int, days: int) -> np.ndarray:
    """Day effects with unit variance: streams x days."""
    if world.noise == "t3":
        return rng.standard_t(3, (streams, days)) / np.sqrt(3.0)
    shocks = rng.normal(0.0, 1.0, (streams, days))
    if world.noise != "ar1":
        return shocks
    out = np.empty_like(shocks)
    out[:, 0] = shocks[:, 0]
    scale = np.sqrt(1 - world.phi**2)
    for t in range(1, days):
        out[:, t] = world.phi * out[:, t - 1] + scale * shocks[:, t]
    return out


def logit_shift(rate: np.ndarray, drops: np.ndarray) -> np.ndarray:
    """Logit offset per stream that lowers its mean task rate by each drop (bisection)."""
    target = rate.mean(axis=1, keepdims=True) - drops[None, :]
    lo, hi = np.full(target.shape, -12.0), np.full(target.shape, 0.0)
    base = logit(rate)[:, None, :]
    for _ in range(50):
        mid = (lo + hi) / 2
        too_low = expit(base + mid[:, :, None]).mean(axis=2) < target
        lo, hi = np.where(too_low, mid, lo), np.where(too_low, hi, mid)
    return np.where(drops[None, :] == 0, 0.0, (lo + hi) / 2)


def _rates(world: World, rng: np.random.Generator, streams: int, tasks: int) -> np.ndarray:
    mean = rng.uniform(*world.mean, (streams, 1))
    icc = rng.uniform(*world.icc, (streams, 1))
    spread = 1 / icc - 1
    return np.clip(rng.beta(mean * spread, (1 - mean) * spread, (streams, tasks)), 1e-4, 1 - 1e-4)


class Streams:
    """Many simulated subjects over `days`, with the mean pass rate lowered by `drop` (per day)."""

    def __init__(self, world: World, rng: np.random.Generator, streams: int, drop: np.ndarray) -> None:
        self.world, self.rng = world, rng
        days = len(drop)
        rotations = (days - 1) // world.rotation if world.rotation else 0
        fresh = int(round(world.rotated * TASKS))
        columns = TASKS + rotations * fresh
        rate = _rates(world, rng, streams, columns)
        # Which task occupies which slot when: slot j < TASKS starts as task j; each rotation
        # retires `fresh` of the active tasks and brings in `fresh` new columns.
        active = np.zeros((streams, days, columns), dtype=bool)
        current = np.tile(np.arange(TASKS), (streams, 1))
        start = 0
        for r in range(rotations + 1):
            stop = days if r == rotations else (r + 1) * world.rotation
            active[:, start:stop][np.arange(streams)[:, None], :, current] = True
            if r < rotations:
                out = np.argsort(rng.random((streams, TASKS)), axis=1)[:, :fresh]
                current[np.arange(streams)[:, None], out] = TASKS + r * fresh + np.arange(fresh)
            start = stop
        missing = rng.uniform(*world.missing_cells, (streams, 1, 1))
        active &= rng.random(active.shape) >= missing
        if world.missing_days:
            active &= ~self._outages(streams, days)[:, :, None]
        tau = rng.uniform(*world.tau, (streams, 1))
        slope = (rate[:, :TASKS] * (1 - rate[:, :TASKS])).mean(axis=1, keepdims=True)
        day = _unit_noise(world, rng, streams, days) * tau / slope  # logit units, streams x days
        sensitivity = np.ones((streams, 1, columns))
        if world.sensitivity:
            sensitivity = np.clip(rng.normal(1.0, world.sensitivity, (streams, 1, columns)), 0.0, None)
        levels, index = np.unique(drop, return_inverse=True)
        shift = logit_shift(rate[:, :TASKS], levels)[:, index]  # streams x days
        eta = logit(rate)[:, None, :] + day[:, :, None] * sensitivity + shift[:, :, None]
        if world.task_day:
            eta = eta + rng.normal(0.0, world.task_day, eta.shape)
        self.p = expit(eta)
        self.active = active

    def _outages(self, streams: int, days: int) -> np.ndarray:
        """Whole days without data: outages of 1-5 days covering about `missing_days` of the days."""
        out = np.zeros((streams, days), dtype=bool)
        starts = self.rng.random((streams, days)) < self.world.missing_days / 3.0
        lengths = self.rng.integers(1, 6, (streams, days))
        for t in np.flatnonzero(starts.any(axis=0)):
            rows = np.flatnonzero(starts[:, t])
            for length in np.unique(lengths[rows, t]):
                pick = rows[lengths[rows, t] == length]
                out[pick, t : t + length] = True
        return out

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.p.shape

    def draw(self, t: int, trials: np.ndarray | int, rows: np.ndarray | None = None) -> tuple:
        """Successes and trials of day t for `rows` (all streams): `trials` per task (per row)."""
        rows = np.arange(self.p.shape[0]) if rows is None else rows
        want = np.broadcast_to(
            np.asarray(trials)[..., None] if np.ndim(trials) else trials, (len(rows), self.p.shape[2])
        )
        m = np.where(self.active[rows, t], self.rng.binomial(want, 1 - LOST), 0)
        return self.rng.binomial(m, self.p[rows, t]), m

    def all_days(self, trials: int = TRIALS) -> tuple[np.ndarray, np.ndarray]:
        """Every day at a fixed number of trials: streams x days x tasks."""
        m = np.where(self.active, self.rng.binomial(trials, 1 - LOST, self.p.shape), 0)
        return self.rng.binomial(m, self.p), m
