"""Calibration of the online detector over a grid of simulated worlds, the daily loop included.

    python benchmarks/calibration.py [--quick] [--seed N] [--workers 2] [--out FILE.json] [--strict]

Streams: fixed panels of 50 tasks x 3 trials a day (benchmarks/worlds.py): per-task rates with
intra-task correlation 0.3-0.8, day effects of 0.5-1.5 points, missing task-days; the grid varies
one thing at a time (autocorrelated, heavy-tailed or larger day effects, heterogeneous tasks,
missing tasks and days, a rotating panel) and then all together.

Designs, each the whole loop (benchmarks/loop.py: trials chosen from yesterday's statistic, an
alarm buying fresh trials of its day, the confirmation decision, what it all costs):
  current    the detector and confirmation sensor before pipeline/stats/: MonitorDesign() field
             defaults, 3 trials a day, an alarm confirmed when it survives 3 more trials
  robust     pipeline.stats.design.DESIGN without its warning line or onboarding (3 trials every
             day), with pipeline.stats.confirmation.RULE
  adaptive   DESIGN as calibrated: 3 trials a day (6 in a subject's first 30 days), 12 the day
             after the statistic ends above the warning line, RULE (12 fresh trials; held to the
             next day when they are middling)
Baselines (alarms only, nothing confirms them): the public trackers' one-sided exact binomial
test of the last 1, 7 or 30 days against the first 14, every day; ruptures' PELT (l2, BIC) run
every day on the last 90 days (full mode, the independent world, a subset of streams); never.

Metrics: false alarms and confirmed alerts per stable model-year (days 30 on, both directions),
each with an exact Poisson (Garwood) 95% interval; the worst world is the one with the highest
upper end. Cost: trials per task per stable day (ordinary, warned and fresh) over the current
design's 3. Delays (independent world): first downward alarm (or confirmed alert) on or after a
shift's first day (delay 1 = that day): mean, 95th percentile, share within 1, 2, 3 and 7 days,
share missed (60-day horizon for steps and ramps, 7 for dips).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from record import write_result  # benchmarks/record.py (its folder is on sys.path)
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import baselines  # noqa: E402
import worlds  # noqa: E402
from loop import Loop, run  # noqa: E402

from pipeline.stats.confirmation import RULE, SENSOR_RULE  # noqa: E402
from pipeline.stats.cusum import cusum_arl  # noqa: E402
from pipeline.stats.design import DESIGN, MonitorDesign  # noqa: E402

EVAL_FROM = 30  # stable streams: false alarms counted from this day on
LOOPS = (
    Loop("current", MonitorDesign(), SENSOR_RULE),
    Loop(
        "robust",
        replace(DESIGN, warning=math.inf, warning_trials=0, onboarding_days=0, onboarding_trials=0),
        RULE,
    ),
    Loop("adaptive", DESIGN, RULE),
)
PUBLIC = {"public-1d": 1, "public-7d": 7, "public-30d": 30}


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
    n = 150 if quick else 1000
    found = []
    for start in (30, 180):
        sizes = (5, 13) if quick else (3, 5, 8, 13)
        found += [Scenario(f"step -{size} @{start}", "step", start, size, 0, 60, n) for size in sizes]
    if not quick:
        found += [Scenario(f"ramp -8 over {d}d", "ramp", 60, 8, d, 60, n) for d in (7, 14, 30)]
        found += [Scenario(f"dip -13 for {d}d", "dip", 60, 13, d, 7, n) for d in (1, 2)]
    return found


def _stable_job(args: tuple) -> dict:
    """One world's stable streams through one design (or the baselines)."""
    world_index, name, streams, seed = args
    world = worlds.GRID[world_index]
    days = EVAL_FROM + 365
    panel = worlds.Streams(world, np.random.default_rng([seed, world_index]), streams, np.zeros(days))
    if name == "baselines":
        s, m = panel.all_days()
        return {world.name: {key: _count(baselines.public_rule(s, m, w)) for key, w in PUBLIC.items()}}
    loop = next(x for x in LOOPS if x.name == name)
    out = run(loop, panel)
    return {
        world.name: {
            name: {
                **_count(out.alarms),
                "confirmed": _count(out.confirmed)["alarms"],
                "cost": float(out.trials[:, EVAL_FROM:].mean() / worlds.TRIALS),
                # a subject's first year, its onboarding days included (a one-time cost)
                "first_year_cost": float(out.trials[:, :365].mean() / worlds.TRIALS),
                "warned_days": float(out.warned[:, EVAL_FROM:].mean()),
            }
        }
    }


def _count(alarms: np.ndarray) -> dict:
    counted = alarms[:, EVAL_FROM:] != 0
    return {"alarms": int(counted.sum()), "model_days": int(counted.size)}


def _detect_job(args: tuple) -> tuple[str, dict]:
    """One shift scenario (independent world) through every design and the public rules."""
    index, scenario, seed, pelt_streams = args
    panel = worlds.Streams(
        worlds.BASE, np.random.default_rng([seed, 100 + index]), scenario.streams, scenario.drop()
    )
    row = {}
    s, m = panel.all_days()
    for key, w in PUBLIC.items():
        row[key] = delays(baselines.public_rule(s, m, w), scenario)
    row["never"] = delays(baselines.never(s, m), scenario)
    if pelt_streams:
        row["pelt-l2"] = delays(
            baselines.pelt_daily(s[:pelt_streams], m[:pelt_streams], scenario.start, 1), scenario
        )
    for loop in LOOPS:
        out = run(loop, panel)
        row[loop.name] = {**delays(out.alarms, scenario), "confirmed": delays(out.confirmed, scenario)}
    return scenario.name, row


def delays(alarms: np.ndarray, scenario: Scenario) -> dict:
    """Delay metrics of the first downward alarm on or after the shift's first day."""
    window = alarms[:, scenario.start : scenario.start + scenario.horizon] < 0
    hit = window.any(axis=1)
    delay = np.where(hit, window.argmax(axis=1) + 1, np.inf)
    p95 = float(np.percentile(delay, 95, method="inverted_cdf"))
    return {
        "streams": len(alarms),
        "mean_delay": float(delay[hit].mean()) if hit.any() else None,
        "p95_delay": p95 if math.isfinite(p95) else None,
        **{f"within_{d}": float(np.mean(delay <= d)) for d in (1, 2, 3, 7)},
        "missed": float(np.mean(~hit)),
    }


def garwood(count: int, model_days: int) -> list[float]:
    """Exact Poisson 95% interval of a rate per model-year."""
    years = model_days / 365
    low = stats.chi2.ppf(0.025, 2 * count) / 2 / years if count else 0.0
    return [low, stats.chi2.ppf(0.975, 2 * count + 2) / 2 / years]


def _rate(count: int, model_days: int) -> dict:
    return {"per_year": count / model_days * 365, "ci": garwood(count, model_days), "count": count}


def summarise_grid(raw: dict) -> dict:
    """Rates with intervals per world and design, and the worst world of each."""
    grid: dict[str, dict] = {}
    for world, row in raw.items():
        grid[world] = {}
        for name, counts in row.items():
            entry = {"false_alarms": _rate(counts["alarms"], counts["model_days"])}
            if "confirmed" in counts:
                entry["confirmed_alerts"] = _rate(counts["confirmed"], counts["model_days"])
                entry["cost"], entry["warned_days"] = counts["cost"], counts["warned_days"]
                entry["first_year_cost"] = counts["first_year_cost"]
            grid[world][name] = entry
    worst = {}
    for name in next(iter(grid.values())):
        for metric in ("false_alarms", "confirmed_alerts"):
            rows = [(world, grid[world][name][metric]) for world in grid if metric in grid[world][name]]
            if rows:
                world, value = max(rows, key=lambda item: item[1]["ci"][1])
                worst.setdefault(name, {})[metric] = {"world": world, **value}
    return {"worlds": grid, "worst": worst}


def run_all(quick: bool, seed: int, workers: int) -> dict:
    stable_streams = 40 if quick else 600
    pelt_streams = 0 if quick or not baselines.has_ruptures() else 60
    jobs = [
        (i, name, stable_streams, seed)
        for i in range(len(worlds.GRID))
        for name in (*[x.name for x in LOOPS], "baselines")
    ]
    shifts = scenarios(quick)
    raw: dict[str, dict] = {}
    detection: dict[str, dict] = {}
    with ProcessPoolExecutor(max_workers=workers) as pool:
        detect_jobs = [pool.submit(_detect_job, (i, sc, seed, pelt_streams)) for i, sc in enumerate(shifts)]
        for part in pool.map(_stable_job, jobs):
            for world, row in part.items():
                raw.setdefault(world, {}).update(row)
        for job in detect_jobs:
            name, row = job.result()
            detection[name] = row
            print(f"  {name}: {shifts[0].streams} streams", file=sys.stderr)
    grid = summarise_grid({w.name: raw[w.name] for w in worlds.GRID})
    return {
        "mode": "quick" if quick else "full",
        "seed": seed,
        "panel": {"tasks": worlds.TASKS, "trials": worlds.TRIALS},
        "worlds": {w.name: asdict(w) for w in worlds.GRID},
        "designs": {
            x.name: {
                "monitor": asdict(x.design),
                "rule": asdict(x.rule),
                "trials": x.trials,
                "arl_per_side_iid": cusum_arl(x.design.k, x.design.h, 0.0, x.design.c),
            }
            for x in LOOPS
        },
        "stable_model_years_per_world": stable_streams,  # each stream: 365 evaluated days
        "grid": grid,
        "scenarios": {sc.name: asdict(sc) for sc in shifts},
        "detection": detection,
        "goals": goals(grid, detection),
    }


def _pooled(detection: dict, size: int, days: int, design: str, key: str) -> dict:
    rows = [
        row[design][key] if key else row[design]
        for name, row in detection.items()
        if name.startswith(f"step -{size} ")
    ]
    hits = sum(round(r[f"within_{days}"] * r["streams"]) for r in rows)
    streams = sum(r["streams"] for r in rows)
    interval = stats.binomtest(hits, streams).proportion_ci(0.95)
    return {
        "value": hits / streams,
        "ci": [interval.low, interval.high],
        "worst_start": min(r[f"within_{days}"] for r in rows),
    }


def goals(grid: dict, detection: dict, design: str = "adaptive") -> dict:
    """The goals for the proposed design, with exact 95% intervals."""
    worst = grid["worst"][design]
    base = grid["worlds"][worlds.BASE.name][design]
    out = {
        "false alarms per model-year <= 0.5 (worst world, upper 95%)": {
            **worst["false_alarms"],
            "met": worst["false_alarms"]["ci"][1] <= 0.5,
        },
        "confirmed false alerts per model-year <= 0.1 (independent world)": {
            **base["confirmed_alerts"],
            "met": base["confirmed_alerts"]["per_year"] <= 0.1,
            "worst_world": worst["confirmed_alerts"],
        },
        "cost per stable day rises <= 15% (independent world)": {
            "value": base["cost"] - 1,
            "met": base["cost"] <= 1.15,
            "worst_world": max(grid["worlds"][w][design]["cost"] for w in grid["worlds"]) - 1,
            "first_year": base["first_year_cost"] - 1,  # the onboarding days included
        },
    }
    for size, days, floor in ((13, 2, 0.9), (5, 7, 0.85)):
        check = _pooled(detection, size, days, design, "confirmed")
        out[f"{size}-point drop confirmed within {days} days >= {floor:.0%}"] = {
            **check,
            "met": check["value"] >= floor,
            "raw_alarm": _pooled(detection, size, days, design, ""),
        }
    return out


def _fmt(value, pattern: str = "{:.2f}") -> str:
    return "-" if value is None else pattern.format(value)


def _rate_text(entry: dict) -> str:
    low, high = entry["ci"]
    return f"{entry['per_year']:.2f} ({low:.2f}-{high:.2f})"


def table(report: dict) -> str:
    """The results as fixed-width text."""
    grid, lines = report["grid"], []
    names = [x.name for x in LOOPS]
    years = report["stable_model_years_per_world"]
    for metric, title in (("false_alarms", "false alarms"), ("confirmed_alerts", "confirmed alerts")):
        extra = list(PUBLIC) if metric == "false_alarms" else []
        lines.append(f"{title} per model-year, 95% interval ({years:,} stable model-years per world)")
        header = f"  {'world':<16}" + "".join(f"{n:>20}" for n in names) + "".join(f"{n:>11}" for n in extra)
        lines += [header, "  " + "-" * (len(header) - 2)]
        for world, row in grid["worlds"].items():
            cells = "".join(f"{_rate_text(row[n][metric]):>20}" for n in names)
            cells += "".join(f"{row[n]['false_alarms']['per_year']:>11.2f}" for n in extra)
            lines.append(f"  {world:<16}{cells}")
        worst = "".join(f"{_rate_text(grid['worst'][n][metric]):>20}" for n in names)
        worst += "".join(f"{grid['worst'][n]['false_alarms']['per_year']:>11.2f}" for n in extra)
        lines.append(f"  {'worst world':<16}{worst}")
        lines.append(
            f"  {'':<16}"
            + "".join(f"{grid['worst'][n][metric]['world']:>20}" for n in names)
            + "".join(f"{grid['worst'][n]['false_alarms']['world'][:10]:>11}" for n in extra)
        )
        lines.append("")
    lines.append(
        "cost per stable day (trials vs 3 a day), share of days with warning trials, and the first"
        " year's cost (onboarding days included)"
    )
    for world, row in grid["worlds"].items():
        lines.append(
            f"  {world:<16}"
            + "".join(
                f"{n}: {row[n]['cost']:.3f} ({row[n]['warned_days']:.1%}; first year "
                f"{row[n]['first_year_cost']:.3f})  "
                for n in names
            )
        )
    header = (
        f"{'scenario':<18} {'detector':<20} {'mean':>6} {'p95':>5} {'<=1d':>5} {'<=2d':>5} "
        f"{'<=3d':>5} {'<=7d':>5} {'missed':>6}"
    )
    lines += [
        "",
        "delays in the independent world (alarms; 'confirmed' rows: confirmed alerts)",
        header,
        "-" * len(header),
    ]
    for name, row in report["detection"].items():
        first = True
        for detector, r in row.items():
            for label, entry in ((detector, r), (f"{detector} confirmed", r.get("confirmed"))):
                if entry is None:
                    continue
                lines.append(
                    f"{name if first else '':<18} {label:<20} {_fmt(entry['mean_delay'], '{:.1f}'):>6} "
                    f"{_fmt(entry['p95_delay'], '{:.0f}'):>5} {entry['within_1']:>5.0%} "
                    f"{entry['within_2']:>5.0%} {entry['within_3']:>5.0%} {entry['within_7']:>5.0%} "
                    f"{entry['missed']:>6.0%}"
                )
                first = False
    lines += ["", "goals for the adaptive design (exact 95% intervals):"]
    for goal, check in report["goals"].items():
        verdict = "met" if check["met"] else "NOT MET"
        if "per_year" in check:
            text = f"{_rate_text(check)}" + (f" in {check['world']}" if "world" in check else "")
        elif "ci" in check:
            low, high = check["ci"]
            text = f"{check['value']:.3f} ({low:.3f}-{high:.3f}); weaker start day {check['worst_start']:.3f}"
        else:
            text = f"{check['value']:+.1%}"
        if "worst_world" in check:
            w = check["worst_world"]
            text += (
                f"; worst world {_rate_text(w)} ({w['world']})"
                if isinstance(w, dict)
                else f"; worst world {w:+.1%}"
            )
        lines.append(f"  {goal}: {text} — {verdict}")
    return "\n".join(lines)


def _plain(value):
    """JSON-able: numpy scalars to Python, infinities and NaN to None."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run for CI (about a minute)")
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--out", default=None, help="JSON result (default: results/calibration[-quick].json)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a goal is not met")
    args = parser.parse_args()
    started = time.monotonic()
    report = run_all(args.quick, args.seed, args.workers)
    report["seconds"] = round(time.monotonic() - started, 1)
    default = "calibration-quick.json" if args.quick else "calibration.json"
    out = write_result(args.out or Path(__file__).parent / "results" / default, _plain(report))
    print(table(report))
    print(f"\n{report['mode']} run in {report['seconds']:.0f}s; JSON: {out}")
    return 1 if args.strict and not all(check["met"] for check in report["goals"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
