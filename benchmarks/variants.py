"""Cheap design changes for the 5-point delay, measured with benchmarks/calibration.py's own jobs.

    python benchmarks/variants.py [NAME,NAME,...] [--stable 150] [--shift 400] [--out FILE.json]

For each variant of the adaptive design: false alarms, confirmed alerts and cost in the four
worlds that bind (independent, AR(1) 0.8, larger day noise, heterogeneous; `--stable` model-years
each) and 5-point steps at day 30 and 180 (`--shift` streams each), 5-pt confirmed within 7 days.
A screen, not a calibration: a variant worth keeping is then run through calibration.py in full.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import calibration
from loop import Loop
from record import result_path, write_result

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.stats.confirmation import RULE  # noqa: E402
from pipeline.stats.design import DESIGN  # noqa: E402

VARIANTS = {
    loop.name: loop
    for loop in (
        Loop("adaptive", DESIGN, RULE),
        Loop("warning 1.25", replace(DESIGN, warning=1.25), RULE),
        Loop("12 warning trials", replace(DESIGN, warning_trials=12), RULE),
        Loop("warning 1.0 x 4", replace(DESIGN, warning=1.0, warning_trials=4), RULE),
        Loop("2 trials warning 1.0", replace(DESIGN, warning=1.0), RULE, trials=2),
        Loop("2 trials warning 0.5 x 8", replace(DESIGN, warning=0.5, warning_trials=8), RULE, trials=2),
        Loop("horizon 4", replace(DESIGN, horizon=4), RULE),
        Loop("tau margin 0.5", replace(DESIGN, tau_margin=0.5), RULE),
        Loop("no onboarding", replace(DESIGN, onboarding_days=0, onboarding_trials=0), RULE),
        Loop("onboarding 9 trials", replace(DESIGN, onboarding_trials=6), RULE),
        Loop("confirm at 2.0", DESIGN, replace(RULE, threshold=2.0)),
        Loop("warning 1.25 + onboarding", replace(DESIGN, warning=1.25), RULE),
    )
}
WORLDS = ("independent", "ar1 0.8", "large day noise", "heterogeneous")


def screen(names: list[str], stable: int, shift: int, seed: int = 20261201) -> dict:
    calibration.LOOPS = tuple(VARIANTS[n] for n in names)  # the workers fork with these
    worlds = [i for i, w in enumerate(calibration.worlds.GRID) if w.name in WORLDS]
    steps = [calibration.Scenario(f"step -5 @{s}", "step", s, 5, 0, 60, shift) for s in (30, 180)]
    with ProcessPoolExecutor(2) as pool:
        found = [pool.submit(calibration._detect_job, (i, sc, seed, 0)) for i, sc in enumerate(steps)]
        parts = list(pool.map(calibration._stable_job, [(i, n, stable, seed) for i in worlds for n in names]))
        found = [f.result() for f in found]
    out: dict = {n: {} for n in names}
    for part in parts:
        for world, row in part.items():
            for n, r in row.items():
                out[n][world] = {
                    "false_alarms": calibration._rate(r["alarms"], r["model_days"]),
                    "confirmed": calibration._rate(r["confirmed"], r["model_days"]),
                    "cost": r["cost"],
                }
    for name, row in found:
        for n in names:
            out[n][name] = {
                "confirmed_within_7": row[n]["confirmed"]["within_7"],
                "alarm_within_7": row[n]["within_7"],
            }
    return out


def table(out: dict) -> str:
    lines = [
        f"{'variant':<26}"
        + "".join(f"{w[:15]:>16}" for w in WORLDS)
        + f"{'cost':>7}{'5pt@30':>8}{'5pt@180':>8}"
    ]
    for n, row in out.items():
        cells = "".join(
            f"{row[w]['false_alarms']['per_year']:>6.2f} ({row[w]['false_alarms']['ci'][1]:.2f})".rjust(16)
            for w in WORLDS
        )
        cost = max(row[w]["cost"] for w in WORLDS) - 1
        lines.append(
            f"{n:<26}{cells}{cost:>+7.0%}{row['step -5 @30']['confirmed_within_7']:>8.0%}"
            f"{row['step -5 @180']['confirmed_within_7']:>8.0%}"
        )
    return (
        "false alarms per model-year (upper 95%), worst cost rise, 5-pt confirmed within 7 days\n"
        + "\n".join(lines)
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="?", default=",".join(VARIANTS))
    parser.add_argument("--stable", type=int, default=150)
    parser.add_argument("--shift", type=int, default=400)
    parser.add_argument("--quick", action="store_true", help="the first variant, 4 model-years, 20 streams")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    args.out = result_path("variants", args.quick, args.out)
    if args.quick:
        args.names, args.stable, args.shift = next(iter(VARIANTS)), 4, 20
    started = time.monotonic()
    out = screen(args.names.split(","), args.stable, args.shift)
    print(table(out))
    print(f"{time.monotonic() - started:.0f}s; JSON: {write_result(args.out, calibration._plain(out))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
