"""Window tests and verdicts: the latest days against a baseline window, task by task, with the
day-level variance and the minimum detectable effect beside every verdict."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from pipeline.stats.scores import as_streams, day_terms, shrunk_rate
from pipeline.stats.significance import PairedDifference, minimum_detectable_effect, paired_counts

VERDICTS = ("degraded", "improved", "stable", "inconclusive")


def day_variance(successes: np.ndarray, trials: np.ndarray) -> float:
    """Day-level variance tau^2 of a window's daily paired residuals (method of moments, >= 0)."""
    s, m, _ = as_streams(successes, trials)
    s, m = s[0], m[0]
    bs, bm = s.sum(axis=0), m.sum(axis=0)
    known = bm > 0
    base = np.where(known, bs / np.where(known, bm, 1.0), 0.0)
    gap, binom, n = day_terms(s * known, m * known, base, shrunk_rate(bs, bm))
    used = n > 0
    if used.sum() < 3:
        return 0.0
    tau2 = float((gap[used] ** 2).sum() / (used.sum() - 1) - binom[used].mean())
    return max(tau2, 0.0)


@dataclass(frozen=True)
class WindowComparison:
    """A window against a baseline window on shared tasks, with day-level variance and MDE."""

    test: PairedDifference
    tau2: float
    mde: float


def compare_windows(
    successes: np.ndarray,
    trials: np.ndarray,
    window: tuple[int, int],
    baseline: tuple[int, int],
    level: float = 0.95,
    alpha: float = 0.05,
    power: float = 0.8,
) -> WindowComparison:
    """Paired test of days [a, b) against baseline days [c, d) on the tasks both graded.

    tau^2 from the baseline adds tau^2 (1/days + 1/baseline days) to the squared standard error.
    """
    s, m, _ = as_streams(successes, trials)
    s, m = s[0], m[0]
    (a, b), (c, d) = window, baseline
    tau2 = day_variance(s[c:d], m[c:d])
    days_after = max(int((m[a:b].sum(axis=1) > 0).sum()), 1)
    days_before = max(int((m[c:d].sum(axis=1) > 0).sum()), 1)
    extra = tau2 * (1 / days_after + 1 / days_before)
    test = paired_counts(
        s[c:d].sum(axis=0),
        m[c:d].sum(axis=0),
        s[a:b].sum(axis=0),
        m[a:b].sum(axis=0),
        level=level,
        extra_variance=extra,
    )
    return WindowComparison(test, tau2, minimum_detectable_effect(test.se, test.df, alpha, power))


def classify(
    difference: float, se: float, df: int, p_value: float, margin: float, alpha: float = 0.05
) -> tuple[str, float]:
    """Verdict and equivalence p-value (two one-sided tests against +-margin).

    `stable` means the shift is shown to be smaller than the margin (the 1 - 2 alpha interval
    lies inside +-margin), not merely that nothing was significant; otherwise `inconclusive`.
    """
    if df < 1 or not (se > 0) or not math.isfinite(margin):
        return "inconclusive", math.nan
    below = stats.t.sf((margin - difference) / se, df)  # H0: difference >= +margin
    above = stats.t.sf((difference + margin) / se, df)  # H0: difference <= -margin
    equivalence = float(max(below, above))
    if p_value < alpha:
        return ("degraded" if difference < 0 else "improved"), equivalence
    return ("stable" if equivalence < alpha else "inconclusive"), equivalence


@dataclass(frozen=True)
class Verdict:
    """The latest window against the one before it, with the effect the design could detect."""

    verdict: str
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    se: float
    df: int
    mde: float  # minimum detectable effect: 80% power, two-sided 5%, this window's design
    margin: float  # equivalence margin for `stable` (the MDE unless stated)
    equivalence_p: float
    n_tasks: int
    method: str
    window: tuple[int, int]  # day indices [start, stop)
    baseline: tuple[int, int]


def latest_verdict(
    successes: np.ndarray,
    trials: np.ndarray,
    recent: int = 7,
    baseline: int = 28,
    alpha: float = 0.05,
    margin: float | None = None,
    since: int = 0,
) -> Verdict:
    """The last `recent` days with data against up to `baseline` days with data before them.

    The baseline starts no earlier than day `since` (e.g. the latest changepoint), so it does
    not mix two levels, unless that would leave it fewer than `recent` days.
    """
    s, m, _ = as_streams(successes, trials)
    s, m = s[0], m[0]
    with_data = np.flatnonzero(m.sum(axis=1) > 0)
    if len(with_data) < recent + 3:
        return Verdict(
            "inconclusive",
            *[math.nan] * 5,
            0,
            math.nan,
            math.nan,
            math.nan,
            0,
            "too little history",
            (0, 0),
            (0, 0),
        )
    a = int(with_data[-recent])
    c = int(with_data[max(0, len(with_data) - recent - baseline)])
    if np.sum((with_data >= since) & (with_data < a)) >= recent:
        c = max(c, since)
    result = compare_windows(s, m, (a, len(s)), (c, a), alpha=alpha)
    test = result.test
    bound = result.mde if margin is None else margin
    label, equivalence = classify(test.difference, test.se, test.df, test.p_value, bound, alpha)
    return Verdict(
        label,
        test.difference,
        test.ci_low,
        test.ci_high,
        test.p_value,
        test.se,
        test.df,
        result.mde,
        bound,
        equivalence,
        test.n_tasks,
        test.method,
        (a, len(s)),
        (c, a),
    )
