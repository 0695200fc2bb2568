"""Online detection with stated error rates: daily z-scores, CUSUM, verdicts, harness suspects.

Pure functions over numpy arrays (day x task matrices of successes and trials, with an optional
leading axis of independent streams); `detect_counts` composes them over a frame of counts.
Every distribution comes from scipy. The defaults are calibrated in benchmarks/calibration.py.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np
import polars as pl
from scipy import optimize, stats

from pipeline.changepoints import PairedDifference, paired_counts, segment_history

DAYS_PER_YEAR = 365.0


@dataclass(frozen=True)
class MonitorDesign:
    """Online detector settings; benchmarks/calibration.py shows what they deliver."""

    k: float = 0.75  # CUSUM reference value in z units: best against shifts near 2k = 1.5 SE
    # Decision interval. With iid N(0, 1) days the Markov chain gives ARL 2548 days a side (0.29
    # false alarms a year); the lagged baseline makes neighbouring z's share its error, which
    # the calibration simulation shows costs ~1.7x: ~0.45-0.49 a year, ARL ~1500 days a side.
    h: float = 4.2
    c: float = 4.0  # one-day rule: alarm when |z| > c
    burn_in: int = 14  # days of own history before the first z-score
    restart_burn_in: int = 7  # days of new history after an alarm before scoring resumes
    window: int = 365  # most days in the baseline
    variance_window: int = 56  # latest baseline days whose residuals estimate tau^2
    lag: int = 5  # the newest days stay out of the baseline, so a fresh shift cannot leak in


@dataclass(frozen=True)
class DailyScores:
    """Per-day paired difference against the baseline, its variance and z; NaN when not scored."""

    difference: np.ndarray
    variance: np.ndarray
    z: np.ndarray
    tau2: np.ndarray  # day-level variance estimated from the baseline's residuals
    baseline_days: np.ndarray


@dataclass(frozen=True)
class CusumPath:
    """CUSUM sums after each day and the alarms raised (+1 up, -1 down, 0 none)."""

    upper: np.ndarray
    lower: np.ndarray
    alarm: np.ndarray
    one_day: np.ndarray  # the alarm came from the one-day rule alone (the sums were not reset)


def _as_streams(successes: np.ndarray, trials: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple]:
    """(..., days, tasks) -> (streams, days, tasks) with missing cells as zero trials."""
    s = np.asarray(successes, dtype=float)
    m = np.asarray(trials, dtype=float)
    if s.shape != m.shape or s.ndim < 2:
        raise ValueError(f"successes {s.shape} and trials {m.shape} must be equal (..., days, tasks)")
    missing = ~np.isfinite(m) | (m <= 0) | ~np.isfinite(s)
    m = np.where(missing, 0.0, m)
    s = np.where(missing, 0.0, s)
    lead = s.shape[:-2]
    return s.reshape(-1, *s.shape[-2:]), m.reshape(-1, *m.shape[-2:]), lead


def _shrunk(s: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Rate for variance terms, pulled off 0 and 1 so a task never seen to fail still has variance."""
    return (s + 0.5) / (m + 1.0)


def _day_terms(s: np.ndarray, m: np.ndarray, base: np.ndarray, shrunk: np.ndarray) -> tuple:
    """Mean over present tasks of (rate - baseline), its binomial variance, and the task count."""
    present = m > 0
    n = present.sum(axis=-1)
    trials = np.where(present, m, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        gap = np.where(present, s / trials - base, 0.0).sum(axis=-1) / n
    binom = np.where(present, shrunk * (1 - shrunk) / trials, 0.0).sum(axis=-1)
    return gap, binom / np.maximum(n, 1) ** 2, n


class _Scan:
    """Day-by-day scoring of many streams at once; the caller may restart a stream's baseline."""

    def __init__(self, successes: np.ndarray, trials: np.ndarray, design: MonitorDesign) -> None:
        self.s, self.m, self.lead = _as_streams(successes, trials)
        self.design = design
        streams, days, tasks = self.s.shape
        self.cum_s = np.zeros((streams, days + 1, tasks))
        self.cum_m = np.zeros((streams, days + 1, tasks))
        self.cum_days = np.zeros((streams, days + 1))
        self.keep = np.zeros((streams, days), dtype=bool)
        self.restart = np.zeros(streams, dtype=int)  # first day of each stream's baseline
        self.burn = np.full(streams, design.burn_in)
        self.scores = {name: np.full((streams, days), np.nan)
                       for name in ("difference", "variance", "z", "tau2", "baseline_days")}

    def score(self, t: int) -> np.ndarray:
        """Score day t against each stream's baseline; returns z (NaN where not ready)."""
        d = self.design
        rows = np.arange(self.s.shape[0])
        # Baseline [lo, hi): frozen after burn-in, then trailing `lag` days behind today.
        hi = np.minimum(np.maximum(self.restart + self.burn, t - d.lag), t)
        lo = np.maximum(self.restart, hi - d.window)
        kept = self.cum_days[rows, hi] - self.cum_days[rows, lo]
        ready = (t - self.restart >= self.burn) & (kept >= np.maximum(2, self.burn // 2))
        z = np.full(len(rows), np.nan)
        if not ready.any():
            return z
        r, lo, hi, kept = rows[ready], lo[ready], hi[ready], kept[ready]
        bs, bm = self.cum_s[r, hi] - self.cum_s[r, lo], self.cum_m[r, hi] - self.cum_m[r, lo]
        known = bm > 0
        base = np.where(known, bs / np.where(known, bm, 1.0), 0.0)
        shrunk = _shrunk(bs, bm)
        tau2 = self._tau2(r, lo, hi, kept, known, base, shrunk)
        diff, binom, n = _day_terms(self.s[r, t] * known, self.m[r, t] * known, base, shrunk)
        today = (self.m[r, t] > 0) & known
        base_binom = np.where(today, shrunk * (1 - shrunk) / np.where(known, bm, 1.0), 0.0).sum(axis=1)
        variance = binom + tau2 + base_binom / np.maximum(n, 1) ** 2 + tau2 / kept
        scored = n > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            z_ready = np.where(scored, diff / np.sqrt(variance), np.nan)
        z[ready] = z_ready
        for name, value in (("difference", diff), ("variance", variance), ("z", z_ready),
                            ("tau2", tau2), ("baseline_days", kept)):
            self.scores[name][r, t] = np.where(scored, value, np.nan)
        return z

    def _tau2(self, r, lo, hi, kept, known, base, shrunk) -> np.ndarray:
        """Day-level variance: method of moments on the baseline's latest daily residuals."""
        span = min(self.design.variance_window, self.design.window)
        days = np.maximum(hi - span, lo)[:, None] + np.arange(span)[None, :]
        inside = days < hi[:, None]
        days = np.minimum(days, self.s.shape[1] - 1)
        inside &= self.keep[r[:, None], days]
        gap, binom, n = _day_terms(self.s[r[:, None], days] * known[:, None, :],
                                   self.m[r[:, None], days] * known[:, None, :],
                                   base[:, None, :], shrunk[:, None, :])
        inside &= n > 0
        used = inside.sum(axis=1)
        # Residuals from a mean that includes them shrink by (1 - 1/days in the baseline).
        squares = np.where(inside, gap, 0.0) ** 2
        spread = squares.sum(axis=1) / np.maximum(used * (1 - 1 / np.maximum(kept, 2)), 1)
        return np.maximum(spread - np.where(inside, binom, 0.0).sum(axis=1) / np.maximum(used, 1), 0.0)

    def admit(self, t: int, admitted: np.ndarray) -> None:
        """Let day t into later baselines where `admitted` and the day has data."""
        keep = admitted & (self.m[:, t].sum(axis=1) > 0)
        self.keep[:, t] = keep
        self.cum_s[:, t + 1] = self.cum_s[:, t] + self.s[:, t] * keep[:, None]
        self.cum_m[:, t + 1] = self.cum_m[:, t] + self.m[:, t] * keep[:, None]
        self.cum_days[:, t + 1] = self.cum_days[:, t] + keep

    def result(self) -> DailyScores:
        shape = (*self.lead, self.s.shape[1])
        return DailyScores(**{name: value.reshape(shape) for name, value in self.scores.items()})


def daily_z(
    successes: np.ndarray, trials: np.ndarray, design: MonitorDesign = MonitorDesign(),
) -> DailyScores:
    """Each day's paired difference against a self-started, lagged baseline of the same tasks.

    Variance = within-task binomial variance of today's tasks + day-level tau^2 (method of
    moments on the baseline's residuals, floored at 0) + the baseline's own estimation variance.
    Days with |z| > c stay out of later baselines, so one broken day cannot blind the detector.
    """
    scan = _Scan(successes, trials, design)
    for t in range(scan.s.shape[1]):
        z = scan.score(t)
        scan.admit(t, ~(np.abs(z) > design.c))
    return scan.result()


def _decide(upper: np.ndarray, lower: np.ndarray, z: np.ndarray, k: float, h: float, c: float) -> tuple:
    """One day of the two-sided CUSUM: new sums (reset after an alarm), alarm sign, one-day flag.

    The sums see z clipped to +-c: a single extreme day is the one-day rule's to report, and
    (with c - k < h) cannot trip the CUSUM and restart the baseline on its own. A missing day
    (NaN) leaves the sums where they were.
    """
    seen = np.isfinite(z)
    value = np.where(seen, z, 0.0)
    clipped = np.clip(value, -c, c)
    upper = np.where(seen, np.maximum(0.0, upper + clipped - k), upper)
    lower = np.where(seen, np.maximum(0.0, lower - clipped - k), lower)
    crossed = (upper > h) | (lower > h)
    jump = np.abs(value) > c
    sign = np.where(upper > h, 1, np.where(lower > h, -1, np.where(jump, np.sign(value), 0))).astype(int)
    return np.where(crossed, 0.0, upper), np.where(crossed, 0.0, lower), sign, jump & ~crossed


def cusum(z: np.ndarray, k: float, h: float, c: float = math.inf) -> CusumPath:
    """Two-sided Gaussian CUSUM on z-scores (last axis = days) with a one-day rule |z| > c.

    S+ = max(0, S+ + z - k), S- = max(0, S- - z - k) with z clipped to +-c; an alarm when
    either exceeds h resets both. A one-day alarm leaves the sums alone.
    """
    z = np.asarray(z, dtype=float)
    upper_path, lower_path = np.zeros_like(z), np.zeros_like(z)
    alarm, one_day = np.zeros(z.shape, dtype=int), np.zeros(z.shape, dtype=bool)
    upper, lower = np.zeros(z.shape[:-1]), np.zeros(z.shape[:-1])
    for t in range(z.shape[-1]):
        upper, lower, alarm[..., t], one_day[..., t] = _decide(upper, lower, z[..., t], k, h, c)
        upper_path[..., t], lower_path[..., t] = upper, lower
    return CusumPath(upper_path, lower_path, alarm, one_day)


@dataclass(frozen=True)
class Monitor:
    """Daily scores and CUSUM path of the online detector."""

    scores: DailyScores
    path: CusumPath
    design: MonitorDesign


def monitor(successes: np.ndarray, trials: np.ndarray, design: MonitorDesign = MonitorDesign()) -> Monitor:
    """The online detector: daily z-scores, CUSUM and one-day rule; a CUSUM alarm restarts the baseline.

    The restart (a new burn-in from the next day) stops a confirmed shift from being judged for
    months against the level it left, so one shift raises one alarm, not one a day.
    """
    scan = _Scan(successes, trials, design)
    streams, days = scan.s.shape[:2]
    upper, lower = np.zeros(streams), np.zeros(streams)
    upper_path, lower_path = np.zeros((streams, days)), np.zeros((streams, days))
    alarm, one_day = np.zeros((streams, days), dtype=int), np.zeros((streams, days), dtype=bool)
    for t in range(days):
        z = scan.score(t)
        upper, lower, alarm[:, t], one_day[:, t] = _decide(upper, lower, z, design.k, design.h, design.c)
        upper_path[:, t], lower_path[:, t] = upper, lower
        scan.admit(t, ~(np.abs(z) > design.c))
        crossed = (alarm[:, t] != 0) & ~one_day[:, t]
        scan.restart = np.where(crossed, t + 1, scan.restart)
        scan.burn = np.where(crossed, design.restart_burn_in, scan.burn)
    shape = (*scan.lead, days)
    path = CusumPath(upper_path.reshape(shape), lower_path.reshape(shape),
                     alarm.reshape(shape), one_day.reshape(shape))
    return Monitor(scan.result(), path, design)


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


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """BH-adjusted p-values (q-values); NaN entries stay NaN and do not count as tests."""
    p = np.asarray(p_values, dtype=float)
    q = np.full(p.shape, np.nan)
    seen = np.isfinite(p)
    if seen.any():
        q[seen] = stats.false_discovery_control(p[seen], method="bh")
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


def day_variance(successes: np.ndarray, trials: np.ndarray) -> float:
    """Day-level variance tau^2 of a window's daily paired residuals (method of moments, >= 0)."""
    s, m, _ = _as_streams(successes, trials)
    s, m = s[0], m[0]
    bs, bm = s.sum(axis=0), m.sum(axis=0)
    known = bm > 0
    base = np.where(known, bs / np.where(known, bm, 1.0), 0.0)
    gap, binom, n = _day_terms(s * known, m * known, base, _shrunk(bs, bm))
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
    successes: np.ndarray, trials: np.ndarray, window: tuple[int, int], baseline: tuple[int, int],
    level: float = 0.95, alpha: float = 0.05, power: float = 0.8,
) -> WindowComparison:
    """Paired test of days [a, b) against baseline days [c, d) on the tasks both graded.

    tau^2 from the baseline adds tau^2 (1/days + 1/baseline days) to the squared standard error.
    """
    s, m, _ = _as_streams(successes, trials)
    s, m = s[0], m[0]
    (a, b), (c, d) = window, baseline
    tau2 = day_variance(s[c:d], m[c:d])
    days_after = max(int((m[a:b].sum(axis=1) > 0).sum()), 1)
    days_before = max(int((m[c:d].sum(axis=1) > 0).sum()), 1)
    extra = tau2 * (1 / days_after + 1 / days_before)
    test = paired_counts(s[c:d].sum(axis=0), m[c:d].sum(axis=0), s[a:b].sum(axis=0), m[a:b].sum(axis=0),
                         level=level, extra_variance=extra)
    return WindowComparison(test, tau2, minimum_detectable_effect(test.se, test.df, alpha, power))


VERDICTS = ("degraded", "improved", "stable", "inconclusive")


def classify(difference: float, se: float, df: int, p_value: float, margin: float,
             alpha: float = 0.05) -> tuple[str, float]:
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
    successes: np.ndarray, trials: np.ndarray, recent: int = 7, baseline: int = 28,
    alpha: float = 0.05, margin: float | None = None, since: int = 0,
) -> Verdict:
    """The last `recent` days with data against up to `baseline` days with data before them.

    The baseline starts no earlier than day `since` (e.g. the latest changepoint), so it does
    not mix two levels, unless that would leave it fewer than `recent` days.
    """
    s, m, _ = _as_streams(successes, trials)
    s, m = s[0], m[0]
    with_data = np.flatnonzero(m.sum(axis=1) > 0)
    if len(with_data) < recent + 3:
        return Verdict("inconclusive", *[math.nan] * 5, 0, math.nan, math.nan, math.nan, 0,
                       "too little history", (0, 0), (0, 0))
    a = int(with_data[-recent])
    c = int(with_data[max(0, len(with_data) - recent - baseline)])
    if np.sum((with_data >= since) & (with_data < a)) >= recent:
        c = max(c, since)
    result = compare_windows(s, m, (a, len(s)), (c, a), alpha=alpha)
    test = result.test
    bound = result.mde if margin is None else margin
    label, equivalence = classify(test.difference, test.se, test.df, test.p_value, bound, alpha)
    return Verdict(label, test.difference, test.ci_low, test.ci_high, test.p_value, test.se, test.df,
                   result.mde, bound, equivalence, test.n_tasks, test.method, (a, len(s)), (c, a))


def harness_suspects(
    z: np.ndarray, share: float = 2 / 3, min_subjects: int = 2, alpha: float = 0.05,
    control_failures: np.ndarray | None = None, control_threshold: float = 0.2,
) -> np.ndarray:
    """Days (rows of a day x subject z matrix) to blame on the harness rather than the models.

    Flagged when at least `share` of the subjects scored that day (and `min_subjects`) moved
    the same way, significant after Benjamini-Hochberg across subjects, or when more than
    `control_threshold` of the tasks' gold/empty controls failed.
    """
    z = np.asarray(z, dtype=float)
    p = 2 * stats.norm.sf(np.abs(z))
    flagged = np.zeros(z.shape[0], dtype=bool)
    for day in range(z.shape[0]):
        seen = np.isfinite(z[day])
        if seen.sum() < min_subjects:
            continue
        significant = benjamini_hochberg(p[day, seen]) < alpha
        needed = max(min_subjects, math.ceil(share * seen.sum() - 1e-9))
        moved = max(np.sum(significant & (z[day, seen] < 0)), np.sum(significant & (z[day, seen] > 0)))
        flagged[day] = moved >= needed
    if control_failures is not None:
        flagged |= np.nan_to_num(np.asarray(control_failures, dtype=float)) > control_threshold
    return flagged


TRUTHY = ["true", "1", "1.0", "yes", "t"]


def _normalise(frame: pl.DataFrame) -> pl.DataFrame:
    """Typed columns: ISO date strings, subject and task as text, resolved as 0/1."""
    missing = {"subject", "date", "task", "resolved"} - set(frame.columns)
    if missing:
        raise ValueError(f"counts need subject, date, task, trial, resolved; lacking {sorted(missing)}")
    return frame.select(
        pl.col("subject").cast(pl.String),
        pl.col("date").cast(pl.String).str.slice(0, 10),
        pl.col("task").cast(pl.String),
        pl.col("resolved").cast(pl.String).str.strip_chars().str.to_lowercase().is_in(TRUTHY)
        .cast(pl.Int64).alias("resolved"),
    ).drop_nulls(["subject", "date", "task"])


def _matrices(rows: pl.DataFrame) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """One subject's graded trials as day x task matrices of successes and trials."""
    counts = rows.group_by(["date", "task"]).agg(s=pl.col("resolved").sum(), m=pl.len())
    dates, tasks = sorted(counts["date"].unique().to_list()), sorted(counts["task"].unique().to_list())
    row_of = {d: i for i, d in enumerate(dates)}
    col_of = {t: j for j, t in enumerate(tasks)}
    s, m = np.zeros((len(dates), len(tasks))), np.zeros((len(dates), len(tasks)))
    for day, task, wins, tries in counts.iter_rows():
        s[row_of[day], col_of[task]] = wins
        m[row_of[day], col_of[task]] = tries
    return dates, tasks, s, m


def _control_failures(controls: pl.DataFrame, dates: list[str]) -> np.ndarray:
    """Share of tasks whose gold/empty controls failed, per day (0 where no controls ran)."""
    frame = controls.select(
        pl.col("date").cast(pl.String).str.slice(0, 10),
        pl.col("task").cast(pl.String),
        pl.col("ok").cast(pl.String).str.strip_chars().str.to_lowercase().is_in(TRUTHY),
    )
    share = dict(frame.group_by("date").agg((~pl.col("ok")).mean()).iter_rows())
    return np.array([share.get(day, 0.0) for day in dates], dtype=float)


def _subject_report(name: str, dates: list[str], tasks: list[str], s: np.ndarray, m: np.ndarray,
                    design: MonitorDesign, recent: int, baseline: int,
                    releases: list[tuple[str, str, str]] = (), with_monitor: bool = False,
                    ) -> tuple[dict, Verdict]:
    """Changepoints, online alarms, latest scores and verdict of one subject's history."""
    changes = segment_history(name, dates, tasks, s, m, releases) if len(dates) >= 6 else []
    run = monitor(s, m, design)
    z, last = run.scores.z, len(dates) - 1
    report = {
        "days": len(dates), "tasks": len(tasks), "first_date": dates[0], "last_date": dates[-1],
        "changepoints": [
            {"date": cp.date, "before_rate": cp.before_rate, "after_rate": cp.after_rate,
             "difference": cp.difference, "ci_low": cp.ci_low, "ci_high": cp.ci_high,
             "p_value": cp.p_value, "n_tasks": cp.n_tasks, "flipped_down": list(cp.flipped_down),
             "flipped_up": list(cp.flipped_up), "version_change": cp.version_change}
            for cp in changes
        ],
        "alarms": [
            {"date": dates[t], "direction": "up" if run.path.alarm[t] > 0 else "down",
             "rule": "one-day" if run.path.one_day[t] else "cusum", "z": z[t],
             "difference": run.scores.difference[t]}
            for t in np.flatnonzero(run.path.alarm)
        ],
        "latest": {"date": dates[last], "z": z[last], "difference": run.scores.difference[last],
                   "cusum_up": run.path.upper[last], "cusum_down": run.path.lower[last]},
    }
    if with_monitor:  # the daily path, for charts: statistic against its threshold
        report["monitor"] = [
            {"date": d, "z": z[t], "cusum_up": run.path.upper[t], "cusum_down": run.path.lower[t]}
            for t, d in enumerate(dates)
        ]
    since = max((dates.index(cp.date) for cp in changes), default=0)
    return report, latest_verdict(s, m, recent, baseline, since=since)


def detect_counts(
    frame: pl.DataFrame, controls: pl.DataFrame | None = None, design: MonitorDesign = MonitorDesign(),
    recent: int = 7, baseline: int = 28, releases: dict[str, list[tuple[str, str, str]]] | None = None,
    with_monitor: bool = False,
) -> dict:
    """Changepoints, online alarms and a verdict per subject, and harness-suspect days, as JSON.

    `frame` holds one row per graded trial (subject, date, task, trial, resolved); `controls`,
    optional, one row per gold/empty control (date, task, ok). Days flagged as harness suspects
    are reported once and left out of every subject's analysis; verdicts are significant after
    Benjamini-Hochberg across subjects. `releases` (subject -> [(first seen, old, new)]) marks
    changepoints near a release; `with_monitor` adds each subject's daily CUSUM path.
    """
    rows = _normalise(frame)
    subjects = sorted(rows["subject"].unique().to_list())
    all_dates = sorted(rows["date"].unique().to_list())
    at = {d: i for i, d in enumerate(all_dates)}
    panels = {name: _matrices(rows.filter(pl.col("subject") == name)) for name in subjects}
    z_table = np.full((len(all_dates), len(subjects)), np.nan)
    for column, name in enumerate(subjects):
        dates, _, s, m = panels[name]
        z_table[[at[d] for d in dates], column] = daily_z(s, m, design).z
    failures = _control_failures(controls, all_dates) if controls is not None else None
    suspect = harness_suspects(z_table, control_failures=failures)
    suspect_days = [
        {"date": day,
         "subjects_down": [n for n, z in zip(subjects, z_table[i], strict=True) if z < -2],
         "subjects_up": [n for n, z in zip(subjects, z_table[i], strict=True) if z > 2],
         "control_failure_share": None if failures is None else failures[i]}
        for i, day in enumerate(all_dates) if suspect[i]
    ]
    flagged = {entry["date"] for entry in suspect_days}
    reports, verdicts, spans = {}, {}, {}
    for name in subjects:
        dates, tasks, s, m = panels[name]
        keep = np.array([d not in flagged for d in dates])
        dates = [d for d, k in zip(dates, keep, strict=True) if k]
        if not dates:
            continue
        reports[name], verdicts[name] = _subject_report(
            name, dates, tasks, s[keep], m[keep], design, recent, baseline,
            (releases or {}).get(name, []), with_monitor)
        reports[name]["excluded_days"] = sorted(set(panels[name][0]) & flagged)
        spans[name] = dates
    names = list(reports)
    q_values = benjamini_hochberg(np.array([verdicts[name].p_value for name in names]))
    out = {}
    for name, q in zip(names, q_values, strict=True):
        v, dates = verdicts[name], spans[name]
        if np.isfinite(q):
            v = replace(v, verdict=classify(v.difference, v.se, v.df, float(q), v.margin)[0])
        windows = {key: [dates[a], dates[b - 1]] if b > a else None
                   for key, (a, b) in (("window", v.window), ("baseline", v.baseline))}
        verdict = {**{k: val for k, val in asdict(v).items() if k not in windows}, "q_value": q, **windows}
        out[name] = {**reports[name], "verdict": verdict, "mde": v.mde}
    return _clean({
        "design": {**asdict(design), "arl_per_side_iid": cusum_arl(design.k, design.h, 0.0, design.c),
                   "false_alarms_per_year_iid": false_alarms_per_year(design)},
        "subjects": out,
        "harness_suspect_days": suspect_days,
    })


def _clean(value):
    """JSON-able: numpy scalars to Python, NaN and infinities to None."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
