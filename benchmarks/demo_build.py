"""How long the demo history takes to build, and where the time goes.

    python benchmarks/demo_build.py [--days 95] [--out benchmarks/results/demo_build.json]

Builds the demo history in a fresh temporary home through real Dagster runs (as
`candlebench demo` does), then reports per stage: runs, wall time, time inside our steps and
Dagster's overhead around them, plus the time spent grading fresh (not cached) patches.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from record import result_path, write_result  # benchmarks/record.py (its folder is on sys.path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=95)
    parser.add_argument(
        "--sandbox",
        default="process",
        choices=["process", "docker", "auto"],
        help="grading backend (default: process, what a fresh machine without Docker runs)",
    )
    parser.add_argument("--quick", action="store_true", help="a 1-day history of 4 tasks")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    args.out = result_path("demo_build", args.quick, args.out)
    if args.quick:
        args.days = 1
    with tempfile.TemporaryDirectory(prefix="cb-bench-") as scratch:
        os.environ["CANDLEBENCH_HOME"] = scratch
        os.environ.pop("DAGSTER_HOME", None)
        os.environ.pop("CANDLEBENCH_CONFIG", None)
        import dagster as dg

        from pipeline.config import pin_demo_config
        from pipeline.orchestration.history import build_history, prepare_dagster_home

        today = dt.date.today()
        prepare_dagster_home()
        config = pin_demo_config(today)
        text = config.read_text().replace("sandbox: auto", f"sandbox: {args.sandbox}", 1)
        if args.quick:  # 4 tasks a day: the fresh gradings of the controls dominate otherwise
            text = text.replace("  size: 40 ", "  size: 4 ", 1)
        config.write_text(text)
        started = time.monotonic()
        with dg.DagsterInstance.get() as instance:
            timings = build_history(today, days=args.days, instance=instance, progress=lambda _: None)
        total = time.monotonic() - started
        fresh = [json.loads(p.read_text()) for p in Path(scratch, "artifacts").rglob("verdict.json")]
    grading_s = sum(v["duration_s"] for v in fresh)
    rows = [
        {
            "stage": stage,
            "wall_s": round(wall, 2),
            "in_steps_s": round(timings.steps[stage], 2),
            "dagster_overhead_s": round(wall - timings.steps[stage], 2),
        }
        for stage, wall in timings.stages.items()
    ]
    result = {
        "days": args.days,
        "runs": timings.runs,
        "total_s": round(total, 1),
        "dagster_overhead_s": round(timings.dagster_overhead_s, 1),
        "fresh_gradings": len(fresh),
        "fresh_grading_s": round(grading_s, 1),
        "aggregation_s": round(timings.stages["candles"] + timings.stages["changepoints and report"], 1),
        "goal_s": 300,
        "sandbox": args.sandbox,
        "stages": rows,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
    }
    print(f"{'stage':<24}{'wall s':>10}{'in steps s':>12}{'dagster s':>11}")
    for row in rows:
        print(f"{row['stage']:<24}{row['wall_s']:>10}{row['in_steps_s']:>12}{row['dagster_overhead_s']:>11}")
    print(f"{'total':<24}{result['total_s']:>10}   ({timings.runs} runs; goal < 300 s)")
    print(f"fresh gradings: {len(fresh)}, {grading_s:.1f} s of sandbox time (2 workers in parallel)")
    out = write_result(args.out, result)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
