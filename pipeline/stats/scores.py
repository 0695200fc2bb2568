"""Daily paired z-scores of many streams at once against self-started, lagged baselines.

A stream is one subject's history as day x task matrices of successes and trials (missing
cells as zero trials); a leading axis holds independent streams, so every subject of a
warehouse is scored in one pass over the days.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.stats.design import DEFAULT_DESIGN, MonitorDesign


@dataclass(frozen=True)
class DailyScores:
    """Per-day paired difference against the baseline, its variance and z; NaN when not scored."""

    difference: np.ndarray
    variance: np.ndarray
    z: np.ndarray
    tau2: np.ndarray  # day-level variance estimated from the baseline's residuals
    baseline_days: np.ndarray
    dependence: np.ndarray  # variance a sum of days gains from day-to-day correlation (>= 0)
    z_cusum: np.ndarray  # what the CUSUM adds up: z with `dependence` in its variance


SCORE_FIELDS = ("difference", "variance", "z", "tau2", "baseline_days", "dependence", "z_cusum")


def as_streams(successes: np.ndarray, trials: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple]:
    """(..., days, tasks) -> (streams, days, tasks) with missing cells as zero trials.

    Whole-number counts keep their dtype and, when clean, their memory: a warehouse of subjects
    is not copied to float; arithmetic happens in float64 either way.
    """
    s, m = np.asarray(successes), np.asarray(trials)
    if s.shape != m.shape or s.ndim < 2:
        raise ValueError(f"successes {s.shape} and trials {m.shape} must be equal (..., days, tasks)")
    whole = np.issubdtype(s.dtype, np.integer) and np.issubdtype(m.dtype, np.integer)
    if not whole:
        s, m = s.astype(float, copy=False), m.astype(float, copy=False)
    missing = (m <= 0) if whole else (~np.isfinite(m) | (m <= 0) | ~np.isfinite(s))
    if missing.any() and ((m[missing] != 0).any() or (s[missing] != 0).any()):
        m, s = np.where(missing, 0, m), np.where(missing, 0, s)
    lead = s.shape[:-2]
    return s.reshape(-1, *s.shape[-2:]), m.reshape(-1, *m.shape[-2:]), lead


def shrunk_rate(s: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Rate for variance terms, pulled off 0 and 1 so a task never seen to fail still has variance."""
    return (s + 0.5) / (m + 1.0)


def day_terms(s: np.ndarray, m: np.ndarray, base: np.ndarray, shrunk: np.ndarray) -> tuple:
    """Mean over present tasks of (rate - baseline), its binomial variance, and the task count."""
    present = m > 0
    n = present.sum(axis=-1)
    trials = np.where(present, m, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        gap = np.where(present, s / trials - base, 0.0).sum(axis=-1) / n
    binom = np.where(present, shrunk * (1 - shrunk) / trials, 0.0).sum(axis=-1)
    return gap, binom / np.maximum(n, 1) ** 2, n


@dataclass(frozen=True)
class Baseline:
    """The ready streams' baselines on one day: per-task rates and the day-level variance terms."""

    rows: np.ndarray  # stream indices that can be scored
    kept: np.ndarray  # days in each baseline
    trials: np.ndarray  # rows x tasks: trials in the baseline
    known: np.ndarray  # rows x tasks: the task has a baseline
    rate: np.ndarray
    shrunk: np.ndarray
    tau2: np.ndarray
    tau2_se: np.ndarray  # standard error of the tau^2 estimate (method of moments, approximate)
    dependence: np.ndarray


class Scan:
    """Day-by-day scoring of many streams; the caller admits days and may restart baselines.

    Day t is scored against the days admitted before it, [lo, hi): frozen after burn-in, then
    trailing `lag` days behind, at most `window` days. Each stream's window only moves forward,
    so its per-task sums are kept running (exact for whole-number counts). Counts of day t may
    grow (extra trials) and the day be scored again before it is admitted.
    """

    def __init__(self, successes: np.ndarray, trials: np.ndarray, design: MonitorDesign) -> None:
        self.s, self.m, self.lead = as_streams(successes, trials)
        self.design = design
        streams, days, tasks = self.s.shape
        self.sum_s, self.sum_m = np.zeros((streams, tasks)), np.zeros((streams, tasks))
        self.sum_days = np.zeros(streams)
        self.lo, self.hi = np.zeros(streams, dtype=int), np.zeros(streams, dtype=int)
        self.keep = np.zeros((streams, days), dtype=bool)
        # Per-day terms, set when a day is admitted: sum of rates and tasks present, and (for the
        # days a window can still reach, in a ring written twice so any window is one slice)
        # presence and 1/trials per task.
        self.rate_sum, self.tasks = np.zeros((streams, days)), np.zeros((streams, days))
        reach = design.variance_window + design.lag + max(design.burn_in, design.restart_burn_in) + 1
        self.ring = min(days, reach)
        self.present = np.zeros((streams, 2 * self.ring, tasks))
        self.inverse = np.zeros((streams, 2 * self.ring, tasks))
        self.restart = np.zeros(streams, dtype=int)  # first day of each stream's baseline
        self.burn = np.full(streams, design.burn_in)
        self.scores = {name: np.full((streams, days), np.nan) for name in SCORE_FIELDS}
        self._cached: tuple[int, Baseline] | None = None

    def _move(self, lo: np.ndarray, hi: np.ndarray) -> None:
        """Slide every stream's running sums to its window [lo, hi) (both only move forward)."""
        jump = lo >= self.hi
        if jump.any():
            self.sum_s[jump], self.sum_m[jump], self.sum_days[jump] = 0.0, 0.0, 0.0
            self.lo[jump], self.hi[jump] = lo[jump], lo[jump]
        for edge, target, sign in ((self.hi, hi, 1.0), (self.lo, lo, -1.0)):
            while (behind := np.flatnonzero(edge < target)).size:
                day = edge[behind]
                kept = self.keep[behind, day]
                self.sum_s[behind] += sign * (self.s[behind, day] * kept[:, None])
                self.sum_m[behind] += sign * (self.m[behind, day] * kept[:, None])
                self.sum_days[behind] += sign * kept
                edge[behind] += 1

    def baseline(self, t: int) -> Baseline:
        """Each ready stream's baseline for day t (computed once per day)."""
        if self._cached is not None and self._cached[0] == t:
            return self._cached[1]
        d = self.design
        hi = np.minimum(np.maximum(self.restart + self.burn, t - d.lag), t)
        lo = np.maximum(self.restart, hi - d.window)
        self._move(lo, hi)
        kept = self.sum_days
        ready = (t - self.restart >= self.burn) & (kept >= np.maximum(2, self.burn // 2))
        r = np.flatnonzero(ready)
        bs, bm, kept = self.sum_s[r], self.sum_m[r], kept[r]
        known = bm > 0
        base = np.where(known, bs / np.where(known, bm, 1.0), 0.0)
        shrunk = shrunk_rate(bs, bm)
        tau2, tau2_se, dependence = self._day_level(r, lo[r], hi[r], kept, base, shrunk)
        if self.design.dependence_window:
            dependence = self._dependence(r, hi[r], t)
        found = Baseline(r, kept, bm, known, base, shrunk, tau2, tau2_se, dependence)
        self._cached = (t, found)
        return found

    def _window_terms(self, r: np.ndarray, start: np.ndarray, span: int, base, shrunk) -> tuple:
        """day_terms of each row's `span` admitted days from `start` against its baseline.

        A task present on an admitted baseline day is always known to the baseline, so a day's
        gap is (sum of its rates - presence . baseline) / tasks and its binomial variance
        (1/trials . shrunk(1 - shrunk)) / tasks^2: two dot products per day. Rows sharing a
        start read one slice of the arrays.
        """
        days = self.s.shape[1]
        gap, binom, n = np.zeros((len(r), span)), np.zeros((len(r), span)), np.zeros((len(r), span))
        spread = shrunk * (1 - shrunk)
        for a in np.unique(start):
            at = np.flatnonzero(start == a)
            b = min(int(a) + span, days)
            rows = slice(None) if len(at) == self.s.shape[0] else r[at]
            ring = slice(a % self.ring, a % self.ring + (b - a))
            dots = np.matmul(self.present[rows, ring], base[at][:, :, None])[..., 0]
            spreads = np.matmul(self.inverse[rows, ring], spread[at][:, :, None])[..., 0]
            count = self.tasks[rows, a:b]
            with np.errstate(invalid="ignore", divide="ignore"):
                gap[at, : b - a] = (self.rate_sum[rows, a:b] - dots) / count
            binom[at, : b - a] = spreads / np.maximum(count, 1) ** 2
            n[at, : b - a] = count
        return gap, binom, n

    def _day_level(self, r, lo, hi, kept, base, shrunk) -> tuple[np.ndarray, np.ndarray]:
        """tau^2 by the method of moments on the baseline's latest daily residuals, and the
        variance day-to-day correlation adds to a sum of days (Bartlett-weighted autocovariances
        of the same residuals, floored at 0)."""
        design = self.design
        span = min(design.variance_window, design.window)
        start = np.maximum(hi - span, lo)
        days = start[:, None] + np.arange(span)[None, :]
        inside = days < hi[:, None]
        days = np.minimum(days, self.s.shape[1] - 1)
        inside &= self.keep[r[:, None], days]
        gap, binom, n = self._window_terms(r, start, span, base, shrunk)
        inside &= n > 0
        used = inside.sum(axis=1)
        # Residuals from a mean that includes them shrink by (1 - 1/days in the baseline).
        squares = np.where(inside, gap, 0.0) ** 2
        spread = squares.sum(axis=1) / np.maximum(used * (1 - 1 / np.maximum(kept, 2)), 1)
        binomial = np.where(inside, binom, 0.0).sum(axis=1) / np.maximum(used, 1)
        tau2 = np.maximum(spread - binomial, 0.0)
        tau2_se = np.sqrt(2.0 / np.maximum(used, 1)) * (binomial + tau2)
        lags = min(design.dependence_lags, span - 1)
        if lags <= 0 or design.dependence_window:
            return tau2, tau2_se, np.zeros(len(r))
        with np.errstate(invalid="ignore", divide="ignore"):
            centre = np.where(inside, gap, 0.0).sum(axis=1) / np.maximum(used, 1)
        residual = np.where(inside, gap - centre[:, None], 0.0)
        total = np.zeros(len(r))
        for lag in range(1, lags + 1):
            pairs = (inside[:, lag:] & inside[:, :-lag]).sum(axis=1)
            product = (residual[:, lag:] * residual[:, :-lag]).sum(axis=1)
            total += 2 * (1 - lag / (lags + 1)) * product / np.maximum(pairs, 1)
        return tau2, tau2_se, np.maximum(total, 0.0)

    def _dependence(self, r: np.ndarray, hi: np.ndarray, t: int) -> np.ndarray:
        """Variance day-to-day correlation adds to a sum of days, from the stream's own history:
        Bartlett-weighted autocovariances (lags 1..L) of the daily differences scored since its
        baseline last restarted, up to `dependence_window` days before the baseline's end,
        floored at 0."""
        design, lags = self.design, self.design.dependence_lags
        a = max(0, t - design.dependence_window)
        d = self.scores["difference"][r, a:t]
        days = np.arange(a, t)[None, :]
        usable = np.isfinite(d) & (days < hi[:, None]) & (days >= self.restart[r, None]) & self.keep[r, a:t]
        used = usable.sum(axis=1)
        centre = np.where(usable, d, 0.0).sum(axis=1) / np.maximum(used, 1)
        residual = np.where(usable, d - centre[:, None], 0.0)
        total = np.zeros(len(r))
        for lag in range(1, min(lags, max(d.shape[1] - 1, 0)) + 1):
            pairs = (usable[:, lag:] & usable[:, :-lag]).sum(axis=1)
            product = (residual[:, lag:] * residual[:, :-lag]).sum(axis=1)
            total += 2 * (1 - lag / (lags + 1)) * product / np.maximum(pairs, 1)
        return np.maximum(total, 0.0)

    def _terms(self, b: Baseline, pick: np.ndarray, s: np.ndarray, m: np.ndarray) -> dict[str, np.ndarray]:
        """Scores of counts s, m (len(pick) x tasks) against baselines b.rows[pick].

        variance: today's binomial variance + tau^2 + the baseline's own estimation variance.
        The CUSUM's variance widens it for sums of days: the day-to-day dependence, the baseline
        error counted once per day of a `horizon`-day sum (every day shares it), and
        `tau_margin` standard errors of the tau^2 estimate.
        """
        d = self.design
        known, rate, shrunk, bm = b.known[pick], b.rate[pick], b.shrunk[pick], b.trials[pick]
        tau2, kept = b.tau2[pick], b.kept[pick]
        diff, binom, n = day_terms(s * known, m * known, rate, shrunk)
        today = (m > 0) & known
        base_binom = np.where(today, shrunk * (1 - shrunk) / np.where(known, bm, 1.0), 0.0).sum(axis=1)
        baseline_error = base_binom / np.maximum(n, 1) ** 2 + tau2 / kept
        variance = binom + tau2 + baseline_error
        shared = baseline_error + b.dependence[pick] / kept  # one baseline error for all days of a sum
        widened = (
            variance
            + b.dependence[pick] * (1 + 1 / kept)
            + (d.horizon - 1) * shared
            + d.tau_margin * b.tau2_se[pick] * (1 + d.horizon / kept)
        )
        scored = n > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            z = np.where(scored, diff / np.sqrt(variance), np.nan)
            z_sum = np.where(scored, diff / np.sqrt(widened), np.nan)
        return {
            "difference": diff,
            "variance": variance,
            "z": z,
            "tau2": tau2,
            "baseline_days": kept,
            "dependence": b.dependence[pick],
            "z_cusum": z_sum,
            "scored": scored,
        }

    def score(self, t: int, rows: np.ndarray | None = None) -> np.ndarray:
        """Score day t (for `rows` only, when given) and record it; z for every stream (NaN: not ready)."""
        b = self.baseline(t)
        pick = np.arange(len(b.rows)) if rows is None else np.flatnonzero(np.isin(b.rows, rows))
        r = b.rows[pick]
        values = self._terms(b, pick, self.s[r, t], self.m[r, t])
        scored = values.pop("scored")
        for name, value in values.items():
            self.scores[name][r, t] = np.where(scored, value, np.nan)
        return self.scores["z"][:, t]

    def score_counts(self, t: int, rows: np.ndarray, s: np.ndarray, m: np.ndarray) -> np.ndarray:
        """The CUSUM's z (z_cusum) of other counts (rows x tasks, e.g. only a day's confirmation
        trials) against the baselines of day t; NaN where a row is not ready. Not recorded."""
        b = self.baseline(t)
        where = {int(row): i for i, row in enumerate(b.rows)}
        at = np.array([where.get(int(row), -1) for row in rows], dtype=int)
        z = np.full(len(rows), np.nan)
        ready = at >= 0
        if ready.any():
            values = self._terms(b, at[ready], np.asarray(s)[ready], np.asarray(m)[ready])
            z[ready] = values["z_cusum"]
        return z

    def admit(self, t: int, admitted: np.ndarray) -> None:
        """Let day t into later baselines where `admitted` and the day has data."""
        self.keep[:, t] = admitted & (self.m[:, t].sum(axis=1) > 0)
        present = self.m[:, t] > 0
        trials = np.where(present, self.m[:, t], 1.0)
        for slot in (t % self.ring, t % self.ring + self.ring):
            self.present[:, slot], self.inverse[:, slot] = present, present / trials
        self.rate_sum[:, t] = np.where(present, self.s[:, t] / trials, 0.0).sum(axis=1)
        self.tasks[:, t] = present.sum(axis=1)

    def result(self) -> DailyScores:
        shape = (*self.lead, self.s.shape[1])
        return DailyScores(**{name: value.reshape(shape) for name, value in self.scores.items()})


def daily_z(successes: np.ndarray, trials: np.ndarray, design: MonitorDesign = DEFAULT_DESIGN) -> DailyScores:
    """Each day's paired difference against a self-started, lagged baseline of the same tasks.

    Variance = within-task binomial variance of today's tasks + day-level tau^2 (method of
    moments on the baseline's residuals, floored at 0) + the baseline's own estimation variance.
    Days with |z| > c stay out of later baselines, so one broken day cannot blind the detector.
    """
    scan = Scan(successes, trials, design)
    for t in range(scan.s.shape[1]):
        z = scan.score(t)
        scan.admit(t, ~(np.abs(z) > design.c))
    return scan.result()
