"""Detection's own cost at scale: the whole warehouse through `pipeline.stats.warehouse.detect`, against
the implementation before pipeline/stats/ (loaded from git), side by side.

    python benchmarks/detection_scale.py [--quick] [--subjects 400] [--days 730] [--tasks 50]
        [--trials 3] [--baseline-subjects 40] [--full-baseline] [--out FILE.json]

A DuckDB warehouse is synthesized with the tables and columns detect() reads (evaluations:
subject, date, instance_id, trial, resolved, outcome; controls; attempts: subject,
agent_version, date, one row per subject-day), one row per graded trial. Each measurement runs
in a fresh process: wall and CPU seconds (DuckDB's threads included) and peak resident memory.
The old implementation is measured on `--baseline-subjects` subjects (all of them with
`--full-baseline`) and, when fewer, extrapolated per subject-2-years; the new one runs with the
old design on the same subjects (the z-scores must agree) and with the calibrated design on all.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))
from record import write_result  # noqa: E402  benchmarks/record.py

SYNTHESIZE_SQL = """
CREATE TABLE evaluations AS
WITH subjects AS (SELECT i, 'subject-' || lpad(i::VARCHAR, 4, '0') AS subject FROM range({subjects}) s(i)),
     days AS (SELECT d, DATE '2025-01-01' + d::INTEGER AS date FROM range({days}) x(d)),
     tasks AS (SELECT j, 'repo__task-' || lpad(j::VARCHAR, 4, '0') AS instance_id FROM range({tasks}) y(j)),
     trials AS (SELECT k AS trial FROM range({trials}) z(k))
SELECT subject, date, instance_id, trial,
       random() < 0.08 + 0.84 * ((hash(subject, instance_id) % 1000) / 1000.0)
                  + 0.02 * sin(d * 0.7 + i) AS resolved,
       'resolved' AS outcome
FROM subjects, days, tasks, trials;
UPDATE evaluations SET outcome = 'unresolved' WHERE NOT resolved;
CREATE TABLE controls AS SELECT date, instance_id, true AS ok
    FROM (SELECT DISTINCT date FROM evaluations), (SELECT DISTINCT instance_id FROM evaluations);
CREATE TABLE attempts AS SELECT DISTINCT subject, 'v1' AS agent_version, date FROM evaluations;
"""


def synthesize(path: Path, subjects: int, days: int, tasks: int, trials: int) -> float:
    import duckdb

    started = time.monotonic()
    with duckdb.connect(str(path)) as connection:
        connection.execute("SELECT setseed(0.27)")
        connection.execute(SYNTHESIZE_SQL.format(subjects=subjects, days=days, tasks=tasks, trials=trials))
    return time.monotonic() - started


def peak_rss_mb() -> float:
    """This process's peak resident memory: VmHWM (reset by exec, unlike ru_maxrss on Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(which: str, db: str, out: str) -> None:
    """In this (fresh) process: run one implementation, write timings, memory and its z-scores."""
    import duckdb

    idle = peak_rss_mb()
    if which == "old":
        import legacy

        run = legacy.detect
        legacy.load()
    else:
        from pipeline.stats.design import DEFAULT_DESIGN, MonitorDesign
        from pipeline.stats.warehouse import detect

        design = MonitorDesign() if which == "new-old-design" else DEFAULT_DESIGN

        def run(connection):
            return detect(connection, design)

    import polars  # noqa: F401  (imports before the clock starts, for both)
    import scipy.stats  # noqa: F401

    loaded = peak_rss_mb()
    wall, cpu = time.monotonic(), time.process_time()
    with duckdb.connect(db, read_only=True) as connection:
        tables = run(connection)
    result = {
        "wall_s": time.monotonic() - wall,
        "cpu_s": time.process_time() - cpu,
        "peak_rss_mb": peak_rss_mb(),
        "rss_after_imports_mb": loaded,
        "rss_at_start_mb": idle,
        "monitor_rows": tables["monitor"].height,
        "alarms": tables["alarms"].height,
        "changepoints": tables["changepoints"].height,
    }
    z = tables["monitor"].select("subject", "date", "z").sort("subject", "date")
    z.write_parquet(out + ".z.parquet")
    Path(out).write_text(json.dumps(result))


def _child(which: str, db: Path, scratch: Path) -> dict:
    out = scratch / f"{which}-{db.stem}.json"
    command = [sys.executable, __file__, "--measure", which, "--db", str(db), "--result", str(out)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{which} on {db.name} failed:\n{done.stderr[-3000:]}")
    return {**json.loads(out.read_text()), "z_file": str(out) + ".z.parquet"}


def _same_z(a: str, b: str) -> dict:
    """How far apart two runs' daily z-scores are (same subjects and days)."""
    import numpy as np
    import polars as pl

    x, y = pl.read_parquet(a), pl.read_parquet(b)
    joined = x.join(y, on=["subject", "date"], how="full", suffix="_new")
    za, zb = joined["z"].to_numpy(), joined["z_new"].to_numpy()
    both = np.isfinite(za) & np.isfinite(zb)
    relative = np.abs(za[both] - zb[both]) / np.maximum(np.abs(za[both]), 1e-300)
    return {
        "days": int(len(joined)),
        "scored_in_both": int(both.sum()),
        "scored_in_one_only": int((np.isfinite(za) != np.isfinite(zb)).sum()),
        "max_relative_difference": float(relative.max()) if both.any() else 0.0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 subjects x 365 days, both measured in full")
    parser.add_argument("--subjects", type=int, default=400)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--baseline-subjects", type=int, default=40)
    parser.add_argument("--full-baseline", action="store_true", help="run the old code on every subject")
    parser.add_argument("--out", default=None)
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--synthesize", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.synthesize:
        path, *numbers = args.synthesize
        print(synthesize(Path(path), *map(int, numbers)))
        return 0
    if args.measure:
        measure(args.measure, args.db, args.result)
        return 0

    if args.quick:
        args.subjects, args.days, args.baseline_subjects = 20, 365, 20
    few = args.subjects if args.full_baseline else min(args.baseline_subjects, args.subjects)
    scratch = Path(tempfile.mkdtemp(prefix="candlebench-detection-scale-"))
    sizes = {"all": args.subjects} if few == args.subjects else {"all": args.subjects, "few": few}
    made = {}
    for name, n in sizes.items():  # in a child, so this process stays small for the ones it starts
        command = [
            sys.executable,
            __file__,
            "--synthesize",
            str(scratch / f"{name}.duckdb"),
            str(n),
            str(args.days),
            str(args.tasks),
            str(args.trials),
        ]
        made[name] = float(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    small = scratch / f"{'few' if 'few' in sizes else 'all'}.duckdb"
    import legacy

    try:
        legacy._source("pipeline/detection.py")
        runs = {"old": _child("old", small, scratch)}
    except legacy.LegacyUnavailable as err:  # a shallow clone: no baseline to run
        print(f"baseline {legacy.BASELINE[:10]} not in this clone's history ({err}): the new code only")
        runs = {}
    runs["new-old-design"] = _child("new-old-design", small, scratch)
    runs["new"] = _child("new", scratch / "all.duckdb", scratch)
    if "few" in sizes:
        runs["new-old-design-all"] = _child("new-old-design", scratch / "all.duckdb", scratch)
    if "old" not in runs:
        return _new_only(args, runs, scratch)
    per_subject_old = runs["old"]["cpu_s"] / few
    scale = args.days / 730
    report = {
        "mode": "quick" if args.quick else "full",
        "panel": {
            "subjects": args.subjects,
            "days": args.days,
            "tasks": args.tasks,
            "trials": args.trials,
            "graded_trials": args.subjects * args.days * args.tasks * args.trials,
        },
        "baseline_subjects": few,
        "synthesis_s": made,
        "runs": runs,
        "old_cpu_s_per_subject_2_years": per_subject_old / scale,
        "old_cpu_s_all_subjects": per_subject_old * args.subjects,
        "old_extrapolated": few < args.subjects,
        "ratio_cpu_same_subjects": runs["old"]["cpu_s"] / runs["new-old-design"]["cpu_s"],
        "ratio_cpu_all_subjects": per_subject_old * args.subjects / runs["new"]["cpu_s"],
        "same_z": _same_z(runs["old"]["z_file"], runs["new-old-design"]["z_file"]),
        "goal": {"seconds": 60, "memory_mb": 1024},
    }
    report["goal"]["met"] = runs["new"]["wall_s"] < 60 and runs["new"]["peak_rss_mb"] < 1024
    for run in runs.values():
        run.pop("z_file")
    shutil.rmtree(scratch, ignore_errors=True)
    out = write_result(
        args.out
        or Path(__file__).parent
        / "results"
        / ("detection_scale-quick.json" if args.quick else "detection_scale.json"),
        report,
    )
    print(text(report))
    print(f"\nJSON: {out}")
    return 0


def _new_only(args, runs: dict, scratch: Path) -> int:
    """The report without a baseline: the new code's own figures and the goal."""
    for run in runs.values():
        run.pop("z_file")
    shutil.rmtree(scratch, ignore_errors=True)
    new = runs["new"]
    report = {
        "mode": "quick" if args.quick else "full",
        "panel": {"subjects": args.subjects, "days": args.days, "tasks": args.tasks, "trials": args.trials},
        "baseline": None,
        "runs": runs,
        "goal": {"seconds": 60, "memory_mb": 1024, "met": new["wall_s"] < 60 and new["peak_rss_mb"] < 1024},
    }
    name = "detection_scale-quick.json" if args.quick else "detection_scale.json"
    out = write_result(args.out or Path(__file__).parent / "results" / name, report)
    print(
        f"new, calibrated design: {new['wall_s']:.1f} s wall, {new['cpu_s']:.1f} cpu s, "
        f"{new['peak_rss_mb']:.0f} MB"
    )
    print(f"goal (< 60 s and < 1024 MB): {'met' if report['goal']['met'] else 'NOT MET'}\nJSON: {out}")
    return 0


def text(report: dict) -> str:
    p, runs = report["panel"], report["runs"]
    lines = [
        f"detection over {p['subjects']} subjects x {p['days']} days x {p['tasks']} tasks x "
        f"{p['trials']} trials ({p['graded_trials']:,} graded trials)",
        f"{'run':<34}{'subjects':>9}{'wall s':>9}{'cpu s':>9}{'peak MB':>9}",
        "-" * 70,
    ]
    few = report["baseline_subjects"]
    labels = {
        "old": ("old (before pipeline/stats/)", few),
        "new-old-design": ("new, old design", few),
        "new-old-design-all": ("new, old design", p["subjects"]),
        "new": ("new, calibrated design", p["subjects"]),
    }
    for key, (label, n) in labels.items():
        if key in runs:
            r = runs[key]
            lines.append(f"{label:<34}{n:>9}{r['wall_s']:>9.1f}{r['cpu_s']:>9.1f}{r['peak_rss_mb']:>9.0f}")
    if report["old_extrapolated"]:
        lines.append(
            f"{'old, extrapolated per subject':<34}{p['subjects']:>9}{'':>9}"
            f"{report['old_cpu_s_all_subjects']:>9.0f}{'':>9}"
        )
    z = report["same_z"]
    lines += [
        "",
        f"old: {report['old_cpu_s_per_subject_2_years']:.2f} cpu s per subject-2-years",
        f"cpu ratio old/new: {report['ratio_cpu_same_subjects']:.0f}x on the same {few} subjects, "
        f"{report['ratio_cpu_all_subjects']:.0f}x on all {p['subjects']}"
        + (" (old extrapolated)" if report["old_extrapolated"] else ""),
        f"z-scores old vs new (old design): {z['scored_in_both']:,} days scored by both, "
        f"{z['scored_in_one_only']} by one only, "
        f"max relative difference {z['max_relative_difference']:.1e}",
        f"goal (< {report['goal']['seconds']} s and < {report['goal']['memory_mb']} MB, "
        f"calibrated design, all subjects): {'met' if report['goal']['met'] else 'NOT MET'}",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
