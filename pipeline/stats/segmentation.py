"""Offline segmentation as ruptures composes it: a cost (fit, error(start, end), min_size) and
a search that takes any cost. Here the cost is binomial, corrected for overdispersion, and the
search is PELT with exact pruning.
"""

from __future__ import annotations

import math
from typing import Protocol, Self

import numpy as np
from scipy.special import xlogy


class Cost(Protocol):
    """A segment cost in ruptures' shape; additive costs (splitting never raises them) prune exactly."""

    min_size: int

    def fit(self, signal: np.ndarray) -> Self: ...

    def error(self, start: int, end: int) -> float: ...


def binomial_cost(successes: float, trials: float) -> float:
    """-2 x the maximised binomial log-likelihood of one segment (constant terms dropped)."""
    if trials <= 0:
        return 0.0
    failures = trials - successes
    return float(-2.0 * (xlogy(successes, successes / trials) + xlogy(failures, failures / trials)))


class BinomialCost:
    """-2 max log-likelihood of a segment of daily (successes, trials), divided by a dispersion.

    `signal` has one row per day and two columns, successes and trials. Dividing by a Pearson
    dispersion estimate (>= 1) keeps day-level noise from looking like changes.
    """

    def __init__(self, dispersion: float = 1.0, min_size: int = 3) -> None:
        self.dispersion = dispersion
        self.min_size = min_size

    def fit(self, signal: np.ndarray) -> Self:
        """`signal`: days x 2 (successes, trials), or series x days x 2 for many series at once
        (then `dispersion` may hold one value per series)."""
        signal = np.asarray(signal, dtype=float)
        signal = signal.reshape(-1, 2) if signal.ndim < 3 else signal
        zero = np.zeros((*signal.shape[:-2], 1))
        self.cum_s = np.concatenate([zero, np.cumsum(signal[..., 0], axis=-1)], axis=-1)
        self.cum_m = np.concatenate([zero, np.cumsum(signal[..., 1], axis=-1)], axis=-1)
        batched = signal.ndim == 3
        self.scale = np.asarray(self.dispersion, dtype=float)[..., None] if batched else self.dispersion
        return self

    def errors(self, starts: np.ndarray, end: int) -> np.ndarray:
        """Costs of the segments [start, end) for many starts at once (series x starts when batched)."""
        s = self.cum_s[..., end, None] - self.cum_s[..., starts]
        m = self.cum_m[..., end, None] - self.cum_m[..., starts]
        f = m - s
        with np.errstate(divide="ignore", invalid="ignore"):
            cost = -2.0 * (xlogy(s, np.where(m > 0, s / m, 1.0)) + xlogy(f, np.where(m > 0, f / m, 1.0)))
        return np.where(m > 0, cost, 0.0) / self.scale

    def error(self, start: int, end: int) -> float:
        return float(self.errors(np.array([start]), end)[0])


class Pelt:
    """Optimal segmentation under sum(cost) + penalty x (#changes), for any additive cost.

    `predict` returns the indices where new segments start (excluding 0). Pruning is exact for
    additive costs; with a minimum segment length a pruned start is kept until the start that
    beat it may be a boundary.
    """

    def __init__(self, cost: Cost, min_size: int | None = None) -> None:
        self.cost = cost
        self.min_size = max(1, cost.min_size if min_size is None else min_size)

    def fit(self, signal: np.ndarray) -> Self:
        self.cost.fit(signal)
        self.n = len(signal)
        return self

    def _errors(self, starts: np.ndarray, end: int) -> np.ndarray:
        many = getattr(self.cost, "errors", None)
        if many is not None:
            return many(starts, end)
        return np.array([self.cost.error(int(start), end) for start in starts])

    def predict(self, penalty: float) -> list[int]:
        n, min_size = self.n, self.min_size
        best = np.full(n + 1, np.inf)
        best[0] = -penalty
        last = np.zeros(n + 1, dtype=int)
        alive = np.array([0])
        doomed = np.full(n + 1, n + 1)  # when a start was first shown never to win again
        for t in range(min_size, n + 1):
            # A start doomed at time u can still win for ends before u + min_size, where the
            # start that beat it is too close to be a boundary.
            alive = alive[t < doomed[alive] + min_size]
            ready = alive[(t - alive >= min_size) & np.isfinite(best[alive])]
            if len(ready):
                total = best[ready] + self._errors(ready, t)
                choice = int(np.argmin(total))
                best[t] = total[choice] + penalty
                last[t] = ready[choice]
                losing = ready[(total > best[t]) & (doomed[ready] > n)]
                doomed[losing] = t
            alive = np.append(alive, t)
        bounds, t = [], n
        while t > 0:
            t = int(last[t])
            if t > 0:
                bounds.append(t)
        return sorted(bounds)


def pelt_many(
    cost: Cost, lengths: np.ndarray, penalties: np.ndarray, min_size: int | None = None
) -> list[list[int]]:
    """`Pelt` for many series at once: `cost` fitted on series x days x ..., its `errors(starts,
    end)` giving series x starts. Series i ends at `lengths[i]` (padding after it is ignored) and
    pays `penalties[i]` per change. Every series meets the same candidates, prunes and ties as
    `Pelt` would alone, with masks instead of lists, so the boundaries are the same.
    """
    lengths, penalties = np.asarray(lengths, dtype=int), np.asarray(penalties, dtype=float)
    series, n = len(lengths), int(lengths.max(initial=0))
    min_size = max(1, cost.min_size if min_size is None else min_size)
    best = np.full((series, n + 1), np.inf)
    best[:, 0] = -penalties
    last = np.zeros((series, n + 1), dtype=int)
    doomed = np.full((series, n + 1), n + 1)
    alive = np.zeros((series, n + 1), dtype=bool)
    alive[:, 0] = True
    for t in range(min_size, n + 1):
        starts = np.arange(t)
        alive[:, :t] &= t < doomed[:, :t] + min_size
        ready = alive[:, :t] & (t - starts >= min_size)[None, :] & np.isfinite(best[:, :t])
        if ready.any():
            total = np.where(ready, best[:, :t] + cost.errors(starts, t), np.inf)
            choice = np.argmin(total, axis=1)
            found = ready.any(axis=1)
            minimum = total[np.arange(series), choice]
            best[found, t] = minimum[found] + penalties[found]
            last[found, t] = choice[found]
            losing = ready & (total > best[:, t, None]) & (doomed[:, :t] > n)
            doomed[:, :t][losing] = t
        alive[:, t] = True
    found = []
    for i in range(series):
        bounds, t = [], int(lengths[i])
        while t > 0:
            t = int(last[i, t])
            if t > 0:
                bounds.append(t)
        found.append(sorted(bounds))
    return found


def pelt(
    successes: np.ndarray, trials: np.ndarray, penalty: float, min_size: int = 3, dispersion: float = 1.0
) -> list[int]:
    """PELT over daily counts with the binomial cost: `Pelt(BinomialCost(...)).fit(...).predict(...)`."""
    signal = np.column_stack([np.asarray(successes, dtype=float), np.asarray(trials, dtype=float)])
    return Pelt(BinomialCost(dispersion, min_size)).fit(signal).predict(penalty)


def dispersion(successes: np.ndarray, trials: np.ndarray, window: int = 14) -> float:
    """Pearson dispersion of daily counts around their local means (median over windows).

    Local windows keep a real shift from inflating the estimate; the result is at least 1,
    so a panel that is less variable than binomial is never treated as more certain.
    """
    s = np.asarray(successes, dtype=float)
    m = np.asarray(trials, dtype=float)
    ratios = []
    for start in range(0, len(s) - window + 1, max(1, window // 2)):
        ws, wm = s[start : start + window], m[start : start + window]
        p = ws.sum() / wm.sum() if wm.sum() else 0.0
        if 0 < p < 1:
            chi2 = np.sum((ws - wm * p) ** 2 / (wm * p * (1 - p)))
            ratios.append(chi2 / (window - 1))
    return max(1.0, float(np.median(ratios))) if ratios else 1.0


def penalty_for(days: int) -> float:
    """About 3 ln T: roughly 0.4 false changepoints per year under doubled variance."""
    return 3.0 * math.log(max(days, 2))


def dispersions(
    successes: np.ndarray, trials: np.ndarray, lengths: np.ndarray, window: int = 14
) -> np.ndarray:
    """`dispersion` of many series at once (series x days, series i using its first lengths[i] days)."""
    s, m = np.asarray(successes, dtype=float), np.asarray(trials, dtype=float)
    step, days = max(1, window // 2), s.shape[1]
    starts = np.arange(0, max(days - window + 1, 0), step)
    found = np.ones(len(s))
    if not len(starts):
        return found
    ws = np.lib.stride_tricks.sliding_window_view(s, window, axis=1)[:, starts]
    wm = np.lib.stride_tricks.sliding_window_view(m, window, axis=1)[:, starts]
    total_s, total_m = ws.sum(axis=-1), wm.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(total_m > 0, total_s / np.where(total_m > 0, total_m, 1.0), 0.0)[..., None]
        chi2 = np.sum((ws - wm * p) ** 2 / (wm * p * (1 - p)), axis=-1)
    usable = (p[..., 0] > 0) & (p[..., 0] < 1) & (starts[None, :] + window <= np.asarray(lengths)[:, None])
    for i in range(len(s)):
        if usable[i].any():
            found[i] = max(1.0, float(np.median(chi2[i][usable[i]] / (window - 1))))
    return found
