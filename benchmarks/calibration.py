"""Calibration of the online detector against simulated agents, beside the public trackers' rule.

    python benchmarks/calibration.py [--quick] [--seed N] [--workers 2] [--out FILE.json]

Streams: a fixed panel of 50 tasks x 3 trials a day. Each stream draws its own mean pass rate
(25-65%), intra-task correlation (ICC 0.3-0.8: per-task rates ~ Beta with that ICC, so the
panel mixes always-, never- and sometimes-solved tasks as real benchmarks do), day-level noise
(0.5-1.5 points, a shift of every task on the logit scale) and missing data (0-6% of
task-days absent, 1% of trials lost to harness errors). Shifts are drops of the mean pass rate
by the stated points, applied on the logit scale to every task.

Detectors, side by side:
  ours        CUSUM on daily paired z-scores + one-day rule (pipeline.stats.monitor)
  public-Nd   one-sided exact binomial test of the last N days' pooled rate against a fixed
              baseline (the first 14 days) at 5%, every day; an alarm is a day the flag turns on
  pelt-l2     ruptures' PELT, least-squares cost, BIC penalty 2 sigma^2 ln T (sigma from the
              MAD of first differences), run every day on the last 90 days' pooled rates; an
              alarm is a changepoint newer than any found the day before (run on a subset of streams)
  never       never alarms (the do-nothing baseline)

Metrics: false alarms per model-year on stable streams (days 30 onward; both directions for
detectors that look both ways), and for each shift the delay of the first downward alarm on or
after the shift's first day (delay 1 = alarm on that day): mean over detected streams, 95th
percentile over all streams (null when more than 5% are missed), share detected within 1, 2,
3 and 7 days, and the share missed (no alarm within the horizon: 60 days for steps and ramps,
7 days for dips).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from record import write_result  # benchmarks/record.py: the script's folder is on sys.path
from scipy import stats
from scipy.special import expit, logit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.stats.cusum import cusum_arl, false_alarms_per_year  # noqa: E402
from pipeline.stats.design import MonitorDesign  # noqa: E402
from pipeline.stats.monitor import monitor  # noqa: E402

TASKS, TRIALS = 50, 3
EVAL_FROM = 30  # stable streams: false alarms counted from this day on
BASELINE_DAYS = 14  # the public rule's fixed baseline
PELT_LOOKBACK = 90


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: str  # stable, step, ramp, dip
    start: int  # first shifted day
    size: float  # drop in points at full strength
    length: int  # ramp or dip length in days
    horizon: int  # days after `start` to count as a detection
    streams: int

    @property
    def days(self) -> int:
        return self.start + self.horizon

    def drop(self) -> np.ndarray:
        """Drop of the mean pass rate on each day, in probability units."""
        day = np.arange(self.days)
        if self.kind == "stable":
            return np.zeros(self.days)
        if self.kind == "step":
            return np.where(day >= self.start, self.size / 100, 0.0)
        if self.kind == "ramp":
            return np.clip((day - self.start + 1) / self.length, 0.0, 1.0) * self.size / 100
        return np.where((day >= self.start) & (day < self.start + self.length), self.size / 100, 0.0)


def scenarios(quick: bool) -> list[Scenario]:
    stable = 60 if quick else 600  # x 365 evaluated days: 219,000 model-days in full mode
    n = 100 if quick else 1000
    found = [Scenario("stable", "stable", EVAL_FROM + 365, 0.0, 0, 0, stable)]
    for start in (30, 180):
        found += [Scenario(f"step -{size} @{start}", "step", start, size, 0, 60, n) for size in (3, 5, 8, 13)]
    found += [Scenario(f"ramp -8 over {d}d", "ramp", 60, 8, d, 60, n) for d in (7, 14, 30)]
    found += [Scenario(f"dip -13 for {d}d", "dip", 60, 13, d, 7, n) for d in (1, 2)]
    return found


def simulate(rng: np.random.Generator, streams: int, drop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Successes and trials, streams x days x tasks, with the mean pass rate lowered by `drop`."""
    days = len(drop)
    mean = rng.uniform(0.25, 0.65, (streams, 1))
    icc = rng.uniform(0.3, 0.8, (streams, 1))
    spread = 1 / icc - 1
    rate = np.clip(rng.beta(mean * spread, (1 - mean) * spread, (streams, TASKS)), 1e-4, 1 - 1e-4)
    tau = rng.uniform(0.005, 0.015, (streams, 1))
    slope = (rate * (1 - rate)).mean(axis=1, keepdims=True)  # d(mean rate) / d(logit shift)
    noise = rng.normal(0.0, 1.0, (streams, days)) * tau / slope
    levels, index = np.unique(drop, return_inverse=True)
    shift = _logit_shift(rate, levels)[:, index]  # streams x days
    p = expit(logit(rate)[:, None, :] + (noise + shift)[:, :, None])
    trials = np.where(rng.random((streams, days, TASKS)) < rng.uniform(0, 0.06, (streams, 1, 1)), 0,
                      rng.binomial(TRIALS, 0.99, (streams, days, TASKS)))
    return rng.binomial(trials, p).astype(float), trials.astype(float)


def _logit_shift(rate: np.ndarray, drops: np.ndarray) -> np.ndarray:
    """Logit offset per stream that lowers its mean task rate by each drop (bisection)."""
    target = rate.mean(axis=1, keepdims=True) - drops[None, :]
    lo, hi = np.full(target.shape, -12.0), np.full(target.shape, 0.0)
    base = logit(rate)[:, None, :]
    for _ in range(50):
        mid = (lo + hi) / 2
        too_low = expit(base + mid[:, :, None]).mean(axis=2) < target
        lo, hi = np.where(too_low, mid, lo), np.where(too_low, hi, mid)
    return np.where(drops[None, :] == 0, 0.0, (lo + hi) / 2)


def ours(s: np.ndarray, m: np.ndarray, design: MonitorDesign) -> np.ndarray:
    return monitor(s, m, design).path.alarm


def public_rule(s: np.ndarray, m: np.ndarray, window: int) -> np.ndarray:
    """Days the one-sided exact binomial test against the first 14 days turns significant."""
    x, n = s.sum(axis=2), m.sum(axis=2)
    p0 = x[:, :BASELINE_DAYS].sum(axis=1, keepdims=True) / n[:, :BASELINE_DAYS].sum(axis=1, keepdims=True)
    cx = np.concatenate([np.zeros((len(x), 1)), np.cumsum(x, axis=1)], axis=1)
    cn = np.concatenate([np.zeros((len(n), 1)), np.cumsum(n, axis=1)], axis=1)
    end = np.arange(1, x.shape[1] + 1)
    start = np.maximum(end - window, 0)
    wx, wn = cx[:, end] - cx[:, start], cn[:, end] - cn[:, start]
    flag = (stats.binom.cdf(wx, wn, p0) < 0.05) & (start >= BASELINE_DAYS)[None, :]
    rising = flag & ~np.concatenate([np.zeros((len(x), 1), dtype=bool), flag[:, :-1]], axis=1)
    return -rising.astype(int)


def _pelt_stream(rates: np.ndarray, first: int) -> np.ndarray:
    """Daily ruptures PELT on one stream's pooled rates; -1/+1 where a newer changepoint appears."""
    import ruptures as rpt

    cost = _least_squares_cost()
    alarms = np.zeros(len(rates), dtype=int)
    newest = -1
    for t in range(max(first - 1, 10), len(rates)):
        lo = max(0, t + 1 - PELT_LOOKBACK)
        signal = rates[lo:t + 1]
        sigma = max(float(stats.median_abs_deviation(np.diff(signal), scale="normal")) / math.sqrt(2), 1e-6)
        bounds = rpt.Pelt(custom_cost=cost, min_size=2, jump=1).fit(signal).predict(
            pen=2 * sigma**2 * math.log(len(signal)))
        if len(bounds) < 2:
            continue
        latest = lo + bounds[-2]
        if t >= first and latest > newest + 2:
            prior = bounds[-3] if len(bounds) > 2 else 0
            after, before = signal[bounds[-2]:], signal[prior:bounds[-2]]
            alarms[t] = -1 if after.mean() < before.mean() else 1
        newest = max(newest, latest)
    return alarms


def _least_squares_cost():
    """ruptures' least-squares cost (CostL2) from cumulative sums: the same values, ~20x faster."""
    from ruptures.base import BaseCost

    class CumulativeL2(BaseCost):
        model = "l2"
        min_size = 1

        def fit(self, signal: np.ndarray) -> CumulativeL2:
            x = np.asarray(signal, dtype=float).ravel()
            self.signal = x.reshape(-1, 1)
            self.first = np.concatenate([[0.0], np.cumsum(x)])
            self.second = np.concatenate([[0.0], np.cumsum(x * x)])
            return self

        def error(self, start: int, end: int) -> float:
            total = self.first[end] - self.first[start]
            return float(self.second[end] - self.second[start] - total * total / (end - start))

    return CumulativeL2()


def pelt_daily(s: np.ndarray, m: np.ndarray, first: int, workers: int) -> np.ndarray:
    rates = s.sum(axis=2) / np.maximum(m.sum(axis=2), 1)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        rows = list(pool.map(_pelt_stream, rates, [first] * len(rates), chunksize=4))
    return np.array(rows)


def _has_ruptures() -> bool:
    try:
        import ruptures  # noqa: F401
    except ImportError:
        return False
    return True


def score(alarms: np.ndarray, scenario: Scenario) -> dict:
    """Metrics of one detector on one scenario's streams."""
    if scenario.kind == "stable":
        counted = alarms[:, EVAL_FROM:] != 0
        model_days = counted.size
        return {"streams": len(alarms), "model_days": int(model_days),
                "false_alarms_per_year": float(counted.sum() / model_days * 365)}
    window = alarms[:, scenario.start:scenario.start + scenario.horizon] < 0
    hit = window.any(axis=1)
    delay = np.where(hit, window.argmax(axis=1) + 1, np.inf)
    p95 = float(np.percentile(delay, 95, method="inverted_cdf"))
    p95 = p95 if math.isfinite(p95) else None
    early = (alarms[:, EVAL_FROM:scenario.start] != 0).any(axis=1) if scenario.start > EVAL_FROM else None
    return {
        "streams": len(alarms),
        "mean_delay": float(delay[hit].mean()) if hit.any() else None,
        "p95_delay": p95,
        **{f"within_{d}": float(np.mean(delay <= d)) for d in (1, 2, 3, 7)},
        "missed": float(np.mean(~hit)),
        "alarmed_before_shift": None if early is None else float(early.mean()),
    }


def run(quick: bool, seed: int, workers: int, design: MonitorDesign) -> dict:
    rng = np.random.default_rng(seed)
    has_ruptures = _has_ruptures()
    pelt_streams = {"stable": 10 if quick else 60, "other": 10 if quick else 100}
    detectors = {
        "ours": lambda s, m: ours(s, m, design),
        "public-1d": lambda s, m: public_rule(s, m, 1),
        "public-7d": lambda s, m: public_rule(s, m, 7),
        "public-30d": lambda s, m: public_rule(s, m, 30),
        "never": lambda s, m: np.zeros(s.shape[:2], dtype=int),
    }
    results: dict[str, dict] = {}
    timings: dict[str, float] = {}
    for scenario in scenarios(quick):
        s, m = simulate(rng, scenario.streams, scenario.drop())
        row: dict[str, dict] = {}
        for name, detect in detectors.items():
            started = time.monotonic()
            row[name] = score(detect(s, m), scenario)
            timings[name] = timings.get(name, 0.0) + time.monotonic() - started
        if has_ruptures:
            few = pelt_streams["stable" if scenario.kind == "stable" else "other"]
            first = EVAL_FROM if scenario.kind == "stable" else scenario.start
            started = time.monotonic()
            row["pelt-l2"] = score(pelt_daily(s[:few], m[:few], first, workers), scenario)
            timings["pelt-l2"] = timings.get("pelt-l2", 0.0) + time.monotonic() - started
        results[scenario.name] = row
        print(f"  {scenario.name}: {scenario.streams} streams x {scenario.days} days", file=sys.stderr)
    return {
        "mode": "quick" if quick else "full",
        "seed": seed,
        "panel": {"tasks": TASKS, "trials": TRIALS},
        "design": {**asdict(design), "arl_per_side_iid": cusum_arl(design.k, design.h, 0.0, design.c),
                   "false_alarms_per_year_iid": false_alarms_per_year(design)},
        "ruptures": has_ruptures,
        "scenarios": {sc.name: asdict(sc) for sc in scenarios(quick)},
        "results": results,
        "goals": goals(results),
        "seconds": {k: round(v, 1) for k, v in timings.items()},
    }


def goals(results: dict) -> dict:
    """The project's goals for its own detector on this run, with exact 95% intervals.

    Drop goals are pooled over the two start days; `worst` is the weaker start day.
    """
    ours_of = {name: row["ours"] for name, row in results.items()}
    stable = ours_of["stable"]
    alarms = round(stable["false_alarms_per_year"] * stable["model_days"] / 365)
    years = stable["model_days"] / 365
    low = stats.chi2.ppf(0.025, 2 * alarms) / 2 / years if alarms else 0.0  # Garwood interval
    high = stats.chi2.ppf(0.975, 2 * alarms + 2) / 2 / years
    fa = stable["false_alarms_per_year"]
    checks = {"false alarms per model-year <= 0.5":
              {"value": fa, "ci": [low, high], "worst": fa, "met": fa <= 0.5}}
    for size, days, metric, floor in ((13, 2, "within_2", 0.9), (5, 7, "within_7", 0.8)):
        rows = [v for k, v in ours_of.items() if k.startswith(f"step -{size} ")]
        hits = sum(round(r[metric] * r["streams"]) for r in rows)
        streams = sum(r["streams"] for r in rows)
        interval = stats.binomtest(hits, streams).proportion_ci(0.95)
        worst = min(r[metric] for r in rows)
        checks[f"{size}-point drop within {days} days >= {floor:.0%}"] = {
            "value": hits / streams, "ci": [interval.low, interval.high], "worst": worst,
            "met": hits / streams >= floor, "met_at_every_start": worst >= floor}
    return checks


def table(report: dict) -> str:
    """The results as a fixed-width text table."""
    def fmt(value, pattern="{:.2f}"):
        return "-" if value is None else pattern.format(value)

    lines = []
    detectors = list(next(iter(report["results"].values())).keys())
    stable = report["results"]["stable"]
    lines.append(f"false alarms per model-year (stable streams, {stable['ours']['model_days']:,} model-days; "
                 f"pelt-l2 on {stable.get('pelt-l2', {}).get('model_days', 0):,})")
    lines.append("  " + "  ".join(f"{d}: {stable[d]['false_alarms_per_year']:.2f}" for d in detectors))
    header = f"{'scenario':<20} {'detector':<11} {'mean':>6} {'p95':>5} {'<=1d':>5} {'<=2d':>5} " \
             f"{'<=3d':>5} {'<=7d':>5} {'missed':>6}"
    lines += ["", header, "-" * len(header)]
    for name, row in report["results"].items():
        if name == "stable":
            continue
        for detector in detectors:
            r = row[detector]
            label = name if detector == detectors[0] else ""
            lines.append(
                f"{label:<20} {detector:<11} {fmt(r['mean_delay'], '{:.1f}'):>6} "
                f"{fmt(r['p95_delay'], '{:.0f}'):>5} {r['within_1']:>5.0%} {r['within_2']:>5.0%} "
                f"{r['within_3']:>5.0%} {r['within_7']:>5.0%} {r['missed']:>6.0%}"
            )
    lines += ["", "goals for ours (pooled over start days, exact 95% interval; weaker start day):"]
    for goal, check in report["goals"].items():
        verdict = "met" if check["met"] else "NOT MET"
        low, high = check["ci"]
        lines.append(f"  {goal}: {check['value']:.3f} ({low:.3f}-{high:.3f}); {check['worst']:.3f} {verdict}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run for CI (under a minute)")
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "calibration.json"))
    args = parser.parse_args()
    started = time.monotonic()
    report = run(args.quick, args.seed, args.workers, MonitorDesign())
    report["seconds"]["total"] = round(time.monotonic() - started, 1)
    out = write_result(args.out, report)
    print(table(report))
    print(f"\n{report['mode']} run in {report['seconds']['total']:.0f}s; JSON: {out}")
    return 0 if all(check["met"] for check in report["goals"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
