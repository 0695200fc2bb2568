"""Paired tests of two windows, McNemar's exact test, Benjamini-Hochberg and the minimum
detectable effect: small pure functions, each checked against scipy or a closed form."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from scipy import optimize, stats


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
    before: np.ndarray, after: np.ndarray, level: float = 0.95, extra_variance: float = 0.0
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
    s_before: np.ndarray,
    m_before: np.ndarray,
    s_after: np.ndarray,
    m_after: np.ndarray,
    level: float = 0.95,
    extra_variance: float = 0.0,
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


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """BH-adjusted p-values (q-values) along the last axis; NaN entries stay NaN and are not tests."""
    p = np.asarray(p_values, dtype=float)
    q = np.full(p.shape, np.nan)
    if p.ndim == 0:
        return stats.false_discovery_control(p[None], method="bh")[0] if np.isfinite(p) else q
    for index in np.ndindex(p.shape[:-1]):
        row = p[index]
        seen = np.isfinite(row)
        if seen.any():
            q[index][seen] = stats.false_discovery_control(row[seen], method="bh")
    return q


def minimum_detectable_effect(se: float, df: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest true difference the two-sided t-test finds with `power` (noncentral t, exact)."""
    if not (se > 0 and df >= 1):
        return math.nan
    crit = stats.t.isf(alpha / 2, df)

    def shortfall(effect: float) -> float:
        ncp = effect / se
        wrong_way = np.nan_to_num(stats.nct.cdf(-crit, df, ncp))  # scipy returns NaN where it is ~0
        return stats.nct.sf(crit, df, ncp) + wrong_way - power

    upper = 2.0 * (crit + stats.t.ppf(power, df)) * se  # twice the normal-approximation answer
    return float(optimize.brentq(shortfall, 0.0, upper))
