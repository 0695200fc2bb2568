"""Backfill costs: re-aggregating a year in one batched run vs one run per day, and a re-grade
of the demo history from the grade cache.

    python benchmarks/backfill.py [--days 365] [--subjects 4] [--quick]

Part 1 writes `days x subjects` synthetic partitions (50 tasks x 3 trials) into a fresh lake, then
materializes `candles` through Dagster twice, side by side: one run over the whole range
(BackfillPolicy.single_run) and one run per date partition. Part 2 builds the 95-day demo
history and re-runs `regrade_job` (grading only, never the agents) for every partition: every
verdict comes from the cache. Prints a table and writes benchmarks/results/backfill.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
from record import result_path, write_result  # benchmarks/record.py (its folder is on sys.path)

TASKS, TRIALS = 50, 3


def synthetic_lake(
    root: Path, start: dt.date, days: int, subjects: list[str], tasks_n: int = TASKS, trials: int = TRIALS
) -> None:
    from pipeline.store.warehouse import Warehouse

    lake = Warehouse(root).lake
    rng = np.random.default_rng(1)
    skill = rng.beta(1.2, 1.5, tasks_n)
    tasks = [f"bench__task-{j:03d}" for j in range(tasks_n)]
    provenance = {"run_id": "bench", "config_hash": "bench"}
    for offset in range(days):
        day = start + dt.timedelta(days=offset)
        controls = pl.DataFrame(
            [
                {
                    "date": day,
                    "instance_id": t,
                    "control": c,
                    "outcome": "resolved" if c == "gold" else "unresolved",
                    "ok": True,
                    "cached": True,
                    "artifact_dir": "",
                    "grader_version": "1",
                    "env_fingerprint": "bench",
                    **provenance,
                }
                for t in tasks
                for c in ("gold", "empty")
            ]
        )
        lake.write_partition("controls", controls, date=day)
        for subject in subjects:
            solved = rng.random((trials, tasks_n)) < skill
            ids = [f"{subject}|{day}|{k}|{t}" for k in range(trials) for t in tasks]
            common = {
                "date": [day] * len(ids),
                "subject": [subject] * len(ids),
                "trial": [k for k in range(trials) for _ in tasks],
                "instance_id": tasks * trials,
                "attempt_id": ids,
                "run_id": ["bench"] * len(ids),
                "config_hash": ["bench"] * len(ids),
            }
            attempts = pl.DataFrame(
                {
                    **common,
                    "started_at": [
                        dt.datetime.combine(day, dt.time(6 + (4 * k) % 18))
                        for k in range(trials)
                        for _ in tasks
                    ],
                    "patch": [""] * len(ids),
                    "cost_usd": [0.5] * len(ids),
                    "input_tokens": [1000] * len(ids),
                    "output_tokens": [100] * len(ids),
                    "cached_tokens": [0] * len(ids),
                    "turns": [5] * len(ids),
                    "duration_s": [60.0] * len(ids),
                    "exit_class": ["submitted"] * len(ids),
                    "agent_version": ["v1"] * len(ids),
                    "failure_mode": [""] * len(ids),
                    "transcript": [""] * len(ids),
                    "detail": [""] * len(ids),
                    "tries": [1] * len(ids),
                    "sample_seed": [1] * len(ids),
                },
                schema_overrides={"started_at": pl.Datetime("us")},
            )
            flat = solved.reshape(-1).tolist()
            evaluations = pl.DataFrame(
                {
                    **common,
                    "outcome": ["resolved" if s else "unresolved" for s in flat],
                    "resolved": flat,
                    "apply_step": ["git_apply"] * len(ids),
                    "f2p_passed": [1] * len(ids),
                    "f2p_total": [1] * len(ids),
                    "p2p_passed": [1] * len(ids),
                    "p2p_total": [1] * len(ids),
                    "grade_key": ["k"] * len(ids),
                    "cached": [True] * len(ids),
                    "artifact_dir": [""] * len(ids),
                    "grader_version": ["1"] * len(ids),
                    "env_fingerprint": ["bench"] * len(ids),
                    "sandbox": ["process"] * len(ids),
                }
            )
            lake.write_partition("attempts", attempts, subject=subject, date=day)
            lake.write_partition("evaluations", evaluations, subject=subject, date=day)


def aggregation(days: int, subjects: int) -> dict:
    import dagster as dg
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    from pipeline.definitions import defs
    from pipeline.orchestration.history import QUIET

    end = dt.date.today()
    start = end - dt.timedelta(days=days - 1)
    names = [f"bench-{i}" for i in range(subjects)]
    synthetic_lake(Path(os.environ["CANDLEBENCH_HOME"]), start, days, names)
    job = defs.resolve_job_def("candles_job")
    with dg.DagsterInstance.ephemeral() as instance:
        began = time.monotonic()
        job.execute_in_process(
            instance=instance,
            run_config=QUIET,
            tags={
                ASSET_PARTITION_RANGE_START_TAG: start.isoformat(),
                ASSET_PARTITION_RANGE_END_TAG: end.isoformat(),
            },
        )
        batched = time.monotonic() - began
        began = time.monotonic()
        for offset in range(days):
            job.execute_in_process(
                instance=instance,
                run_config=QUIET,
                partition_key=(start + dt.timedelta(days=offset)).isoformat(),
            )
        per_partition = time.monotonic() - began
    return {
        "days": days,
        "subjects": subjects,
        "batched_s": round(batched, 2),
        "per_partition_s": round(per_partition, 2),
        "runs_per_partition": days,
        "speedup": round(per_partition / batched, 1),
        "goal_speedup": 20,
    }


def regrade(days: int) -> dict:
    import dagster as dg

    from pipeline.definitions import defs
    from pipeline.orchestration.history import QUIET, build_demo
    from pipeline.orchestration.partitions import date_key

    end = dt.date.today()
    build_demo(end, progress=lambda _: None)
    job = defs.resolve_job_def("regrade_job")
    with dg.DagsterInstance.get() as instance:
        subjects = instance.get_dynamic_partitions("subject")
        began = time.monotonic()
        for offset in range(days):
            day = (end - dt.timedelta(days=offset)).isoformat()
            for subject in subjects:
                job.execute_in_process(
                    instance=instance, run_config=QUIET, partition_key=date_key(day, subject)
                )
        elapsed = time.monotonic() - began
    home = Path(os.environ["CANDLEBENCH_HOME"])
    cached = pl.read_parquet(str(home / "lake/evaluations/**/part.parquet"))["cached"]
    return {
        "days": days,
        "partitions": days * len(subjects),
        "regrade_s": round(elapsed, 1),
        "per_partition_s": round(elapsed / (days * len(subjects)), 3),
        "cached_share": round(float(cached.mean()), 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--subjects", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="30 days x 2 subjects, no re-grade part")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    args.out = result_path("backfill", args.quick, args.out)
    days = 30 if args.quick else args.days
    if args.quick:
        args.subjects = 2
    result = {}
    for part in ("aggregation", "regrade"):
        if part == "regrade" and args.quick:
            continue
        with tempfile.TemporaryDirectory(prefix="cb-backfill-") as scratch:
            os.environ["CANDLEBENCH_HOME"] = scratch
            os.environ["DAGSTER_HOME"] = str(Path(scratch) / "dagster")
            os.environ.pop("CANDLEBENCH_CONFIG", None)
            from pipeline.orchestration.history import prepare_dagster_home

            prepare_dagster_home()
            result[part] = aggregation(days, args.subjects) if part == "aggregation" else regrade(95)
    agg = result["aggregation"]
    print(f"{'re-aggregate candles':<34}{'runs':>6}{'wall s':>10}")
    print(f"{'batched (one run)':<34}{1:>6}{agg['batched_s']:>10}")
    print(f"{'one run per date partition':<34}{agg['runs_per_partition']:>6}{agg['per_partition_s']:>10}")
    print(f"speedup {agg['speedup']}x for {agg['days']} days x {agg['subjects']} subjects (goal >= 20x)")
    if "regrade" in result:
        rg = result["regrade"]
        print(
            f"re-grade of {rg['days']} demo days ({rg['partitions']} partitions) from cache: "
            f"{rg['regrade_s']} s, {rg['per_partition_s']} s per partition, "
            f"{rg['cached_share']:.0%} of verdicts cached"
        )
    out = write_result(args.out, result)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
