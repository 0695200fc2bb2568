"""Offline changepoints: PELT with an overdispersion-corrected binomial cost, and a paired test.

Pure functions over arrays; the changepoints asset only composes them.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats
from scipy.special import xlogy


def binomial_cost(successes: float, trials: float) -> float:
    """-2 x the maximised binomial log-likelihood of one segment (constant terms dropped)."""
    if trials <= 0:
        return 0.0
    failures = trials - successes
    return float(-2.0 * (xlogy(successes, successes / trials) + xlogy(failures, failures / trials)))


def _segment_costs(cum_s: np.ndarray, cum_m: np.ndarray, starts: np.ndarray, end: int) -> np.ndarray:
    s = cum_s[end] - cum_s[starts]
    m = cum_m[end] - cum_m[starts]
    f = m - s
    with np.errstate(divide="ignore", invalid="ignore"):
        cost = -2.0 * (xlogy(s, np.where(m > 0, s / m, 1.0)) + xlogy(f, np.where(m > 0, f / m, 1.0)))
    return np.where(m > 0, cost, 0.0)


def pelt(
    successes: np.ndarray, trials: np.ndarray, penalty: float, min_size: int = 3,
    dispersion: float = 1.0,
) -> list[int]:
    """Optimal segmentation under `sum(cost) / dispersion + penalty * (#changes)`.

    Returns the indices where new segments start (excluding 0). Pruning is exact because the
    binomial cost is additive: splitting a segment never raises its cost; with a minimum
    segment length a pruned start is kept until the start that beat it may be a boundary.
    """
    s = np.asarray(successes, dtype=float)
    m = np.asarray(trials, dtype=float)
    n = len(s)
    cum_s = np.concatenate([[0.0], np.cumsum(s)])
    cum_m = np.concatenate([[0.0], np.cumsum(m)])
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
            total = best[ready] + _segment_costs(cum_s, cum_m, ready, t) / dispersion
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


def dispersion(successes: np.ndarray, trials: np.ndarray, window: int = 14) -> float:
    """Pearson dispersion of daily counts around their local means (median over windows).

    Local windows keep a real shift from inflating the estimate; the result is at least 1,
    so a panel that is less variable than binomial is never treated as more certain.
    """
    s = np.asarray(successes, dtype=float)
    m = np.asarray(trials, dtype=float)
    ratios = []
    for start in range(0, len(s) - window + 1, max(1, window // 2)):
        ws, wm = s[start:start + window], m[start:start + window]
        p = ws.sum() / wm.sum() if wm.sum() else 0.0
        if 0 < p < 1:
            chi2 = np.sum((ws - wm * p) ** 2 / (wm * p * (1 - p)))
            ratios.append(chi2 / (window - 1))
    return max(1.0, float(np.median(ratios))) if ratios else 1.0


@dataclass(frozen=True)
class PairedDifference:
    difference: float  # mean over shared tasks of (after rate - before rate)
    ci_low: float
    ci_high: float
    p_value: float
    n_tasks: int
    se: float = math.nan  # standard error of `difference`, day-level variance included when given
    df: int = 0  # degrees of freedom of the t reference distribution
    method: str = "paired t"  # or "McNemar exact" (p-value) when every task has one trial a side


def paired_difference(
    before: np.ndarray, after: np.ndarray, level: float = 0.95, extra_variance: float = 0.0,
) -> PairedDifference:
    """Paired t-test on per-task pass rates of two windows, over the tasks both contain.

    `extra_variance` is added to the squared standard error of the mean difference: day-level
    noise shifts every task together, so the spread of per-task differences cannot show it.
    """
    before = np.asarray(before, dtype=float)
    after = np.asarray(after, dtype=float)
    d = after - before
    n = len(d)
    if n < 2:
        return PairedDifference(float(d.mean()) if n else 0.0, -1.0, 1.0, 1.0, n)
    mean = float(d.mean())
    se = math.sqrt(float(d.var(ddof=1)) / n + max(extra_variance, 0.0))
    if se == 0:
        p = 1.0 if mean == 0 else 0.0
        return PairedDifference(mean, mean, mean, p, n, 0.0, n - 1)
    t = stats.t.ppf(0.5 + level / 2, n - 1)
    p = float(2 * stats.t.sf(abs(mean) / se, n - 1))
    return PairedDifference(mean, mean - t * se, mean + t * se, p, n, se, n - 1)


def mcnemar_exact(before: np.ndarray, after: np.ndarray) -> tuple[int, int, float]:
    """Exact McNemar test on paired pass/fail outcomes: (pass->fail, fail->pass, two-sided p)."""
    before = np.asarray(before, dtype=bool)
    after = np.asarray(after, dtype=bool)
    lost, gained = int(np.sum(before & ~after)), int(np.sum(~before & after))
    if lost + gained == 0:
        return lost, gained, 1.0
    return lost, gained, float(stats.binomtest(gained, lost + gained, 0.5).pvalue)


def paired_counts(
    s_before: np.ndarray, m_before: np.ndarray, s_after: np.ndarray, m_after: np.ndarray,
    level: float = 0.95, extra_variance: float = 0.0,
) -> PairedDifference:
    """Paired test of two windows from per-task counts, on the tasks both windows graded.

    With one trial per task on each side the outcomes are binary pairs, where McNemar's exact
    test is the right p-value; otherwise a paired t-test on per-task pass rates.
    """
    s_before, m_before = np.asarray(s_before, dtype=float), np.asarray(m_before, dtype=float)
    s_after, m_after = np.asarray(s_after, dtype=float), np.asarray(m_after, dtype=float)
    shared = (m_before > 0) & (m_after > 0)
    before = s_before[shared] / m_before[shared]
    after = s_after[shared] / m_after[shared]
    test = paired_difference(before, after, level, extra_variance)
    if shared.any() and np.all(m_before[shared] == 1) and np.all(m_after[shared] == 1):
        _, _, p = mcnemar_exact(before > 0.5, after > 0.5)
        return replace(test, p_value=p, method="McNemar exact")
    return test


def penalty_for(days: int) -> float:
    """About 3 ln T: roughly 0.4 false changepoints per year under doubled variance."""
    return 3.0 * math.log(max(days, 2))


@dataclass(frozen=True)
class Changepoint:
    subject: str
    date: str  # first day of the new segment
    before_rate: float
    after_rate: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    n_tasks: int
    flipped_down: tuple[str, ...]  # passed in most trials before, fail in most after
    flipped_up: tuple[str, ...]
    version_change: str  # "old -> new" when a release falls within `near` days, else ""


def segment_history(
    subject: str,
    dates: list[str],
    tasks: list[str],
    successes: np.ndarray,
    trials: np.ndarray,
    releases: list[tuple[str, str, str]] = (),
    window: int = 28,
    near: int = 3,
    min_size: int = 3,
) -> list[Changepoint]:
    """Segment one subject's history and describe each boundary.

    `successes` and `trials` are day x task matrices. Each boundary is tested task by task
    on up to `window` days either side (bounded by the neighbouring boundaries).
    """
    daily_s, daily_m = successes.sum(axis=1), trials.sum(axis=1)
    phi = dispersion(daily_s, daily_m)
    bounds = pelt(daily_s, daily_m, penalty_for(len(dates)), min_size=min_size, dispersion=phi)
    edges = [0, *bounds, len(dates)]
    found = []
    for k, b in enumerate(bounds):
        lo, hi = max(edges[k], b - window), min(edges[k + 2], b + window)
        s_before, m_before = successes[lo:b].sum(axis=0), trials[lo:b].sum(axis=0)
        s_after, m_after = successes[b:hi].sum(axis=0), trials[b:hi].sum(axis=0)
        shared = (m_before > 0) & (m_after > 0)
        rate_before = s_before[shared] / m_before[shared]
        rate_after = s_after[shared] / m_after[shared]
        test = paired_counts(s_before, m_before, s_after, m_after)
        names = [t for t, keep in zip(tasks, shared, strict=True) if keep]
        day = dt_date(dates[b])
        release = next(
            (f"{old} -> {new}" for when, old, new in releases
             if abs((dt_date(when) - day).days) <= near),
            "",
        )
        found.append(Changepoint(
            subject=subject,
            date=dates[b],
            before_rate=float(s_before.sum() / m_before.sum()),
            after_rate=float(s_after.sum() / m_after.sum()),
            difference=test.difference,
            ci_low=test.ci_low,
            ci_high=test.ci_high,
            p_value=test.p_value,
            n_tasks=test.n_tasks,
            flipped_down=tuple(n for n, x, y in zip(names, rate_before, rate_after, strict=True)
                               if x > 0.5 and y < 0.5),
            flipped_up=tuple(n for n, x, y in zip(names, rate_before, rate_after, strict=True)
                             if x < 0.5 and y > 0.5),
            version_change=release,
        ))
    return found


def dt_date(text: str) -> dt.date:
    return dt.date.fromisoformat(str(text)[:10])
