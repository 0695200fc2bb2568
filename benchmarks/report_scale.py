"""The report's and the harness-retry sensor's own cost at scale, new code against the old side by side.

    python benchmarks/report_scale.py [--subjects 40] [--days 730] [--quick] [--no-baseline]

Synthesizes a lake in the project's schema (`subjects x days` partitions of 50 tasks x 3 trials,
every column of `pipeline.store.tables`, a drop in half the subjects so that changepoints and
their drill-downs exist), aggregates it with the pipeline's own `refresh_candles` and `detect`,
then measures, each in its own subprocess (wall s, CPU s, peak RSS, bytes written):

- `tracker_report`'s `write_report`: a first report of the whole history, then the update after
  one more day (its partitions, candles and detection), for this tree's code and for the code
  of commit f334f05 (`git archive` into a temporary folder, run through PYTHONPATH);
- a harness-retry sensor tick (its query, `tick_s@<days>d`; the process's figures include
  importing Dagster) on the full lake and on a 30-day lake of the same subjects: the new tick
  reads the 14-day window's files, the old one bound the whole lake.

Prints a table and writes benchmarks/results/report_scale.json (report_scale-quick.json with
--quick: 3 subjects x 45 days, about 30 s on an idle machine).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
from record import write_result  # benchmarks/record.py: the script's folder is on sys.path

ROOT = Path(__file__).resolve().parent.parent
BASELINE = "f334f05"
TASKS, TRIALS = 50, 3
END = dt.date(2026, 11, 30)  # the last day of the first report; the update adds the next


# --- the synthetic world ------------------------------------------------------------------------


def _frame(table: str, values: dict[str, object], rows: int) -> pl.DataFrame:
    """A frame of exactly `table`'s declared columns: `values` where given, else a plain default."""
    from pipeline.store.tables import TABLES

    columns = {}
    for column in TABLES[table].columns:
        if column.name in values:
            value = values[column.name]
        elif column.nullable:
            value = None
        elif column.dtype in (pl.String, pl.Utf8):
            value = ""
        elif column.dtype == pl.Boolean:
            value = False
        elif column.dtype in (pl.Float64,):
            value = 0.0
        else:
            value = 0
        series = value if isinstance(value, (list, np.ndarray)) else [value] * rows
        columns[column.name] = pl.Series(column.name, series, dtype=column.dtype, strict=False)
    return pl.DataFrame(columns)


def _write(lake, table: str, frame: pl.DataFrame, **keys) -> None:
    """The partition file where the lake keeps it (checked against the schema once per table by
    `check_schema`, not on each of tens of thousands of writes)."""
    path = lake.partition_path(table, **keys)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(path)


def _subject_days(job: tuple[str, int, str, list[dt.date]]) -> None:
    from pipeline.store.warehouse import Warehouse

    root, index, subject, days = job
    lake = Warehouse(Path(root)).lake
    rng = np.random.default_rng(index)
    skill = rng.beta(1.2, 1.5, TASKS)
    tasks = [f"bench__task-{j:03d}" for j in range(TASKS)]
    drop_at = END - dt.timedelta(days=int(len(days) * 0.3) if len(days) > 1 else 0)
    n = TASKS * TRIALS
    for day in days:
        rates = skill * (0.6 if index % 2 == 0 and day >= drop_at else 1.0)
        solved = (rng.random((TRIALS, TASKS)) < rates).reshape(-1)
        errors = rng.random(n) < 0.01
        outcome = np.where(errors, "harness_error", np.where(solved, "resolved", "unresolved"))
        ids = [f"{subject}|{day}|{k}|{t}" for k in range(TRIALS) for t in tasks]
        common = {
            "attempt_id": ids,
            "date": day,
            "subject": subject,
            "trial": [k for k in range(TRIALS) for _ in tasks],
            "instance_id": tasks * TRIALS,
            "run_id": "bench",
            "config_hash": "bench",
        }
        attempts = _frame(
            "attempts",
            {
                **common,
                "started_at": [
                    dt.datetime.combine(day, dt.time(6 + 4 * k)) for k in range(TRIALS) for _ in tasks
                ],
                "patch": "diff --git a/x b/x\n",
                "cost_usd": 0.5,
                "input_tokens": 1000,
                "output_tokens": 100,
                "turns": 5,
                "duration_s": 60.0,
                "exit_class": "submitted",
                "agent_version": "v1" if day < drop_at else "v2",
                "tries": 1,
                "sample_seed": 1,
            },
            n,
        )
        evaluations = _frame(
            "evaluations",
            {
                **common,
                "outcome": outcome.tolist(),
                "resolved": (outcome == "resolved").tolist(),
                "apply_step": "git_apply",
                "f2p_total": 1,
                "p2p_total": 1,
                "grade_key": "k",
                "cached": True,
                "artifact_dir": [f"/bench/artifacts/{subject}/{day}/{i}" for i in ids],
                "grader_version": "1",
                "env_fingerprint": "bench",
                "sandbox": "process",
                "tampered": False,
            },
            n,
        )
        _write(lake, "attempts", attempts, subject=subject, date=day)
        _write(lake, "evaluations", evaluations, subject=subject, date=day)


def write_days(root: Path, subjects: list[str], days: list[dt.date], workers: int = 2) -> None:
    """Every subject's partitions of `days`, and the days' controls, all holding."""
    from pipeline.store.warehouse import Warehouse

    lake = Warehouse(root).lake
    tasks = [f"bench__task-{j:03d}" for j in range(TASKS)]
    for day in days:
        controls = _frame(
            "controls",
            {
                "date": day,
                "instance_id": [t for t in tasks for _ in (0, 1)],
                "control": ["gold", "empty"] * TASKS,
                "outcome": ["resolved", "unresolved"] * TASKS,
                "ok": True,
                "grader_version": "1",
                "env_fingerprint": "bench",
                "run_id": "bench",
                "config_hash": "bench",
            },
            2 * TASKS,
        )
        _write(lake, "controls", controls, date=day)
    jobs = [(str(root), i, s, days) for i, s in enumerate(subjects)]
    with multiprocessing.get_context("spawn").Pool(workers) as pool:  # polars is not fork-safe
        pool.map(_subject_days, jobs)


def check_schema(root: Path) -> None:
    """One partition of each table through the lake's own validation: the world is the project's."""
    from pipeline.store.tables import TABLES

    for table in ("attempts", "evaluations", "controls"):
        path = next((root / "lake" / table).rglob("part.parquet"))
        TABLES[table].validate(pl.read_parquet(path))


def aggregate(root: Path, start: dt.date, end: dt.date, subjects: list[str]) -> float:
    from pipeline.stats.warehouse import detect
    from pipeline.store.candles import refresh_candles
    from pipeline.store.warehouse import Warehouse

    began = time.perf_counter()
    with Warehouse(root).writer() as connection:
        refresh_candles(connection, start, end, "bench", subjects)
        for name, frame in detect(connection).items():
            connection.register(f"new_{name}", frame)
            connection.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM new_{name}")
            connection.unregister(f"new_{name}")
    return time.perf_counter() - began


# --- measured in subprocesses -----------------------------------------------------------------

MEASURE = r"""
import json, os, resource, sys, time, datetime as dt
from pathlib import Path
from types import SimpleNamespace
# the code on PYTHONPATH, not the editable install's finder (it would import this tree's code)
sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in (getattr(f, "__module__", "") or "")]
began, cpu = time.perf_counter(), time.process_time()
job, home = sys.argv[1], Path(sys.argv[2])
import pipeline
code = Path(os.environ["PYTHONPATH"]).resolve()
assert Path(pipeline.__file__).resolve().is_relative_to(code), pipeline.__file__
detail = {}
if job == "report":
    from pipeline.report import write_report
    from pipeline.store import Warehouse
    report = write_report(Warehouse(home), SimpleNamespace(subjects=[]))
    detail = {k: getattr(report, k) for k in ("redrawn", "exported_dates") if hasattr(report, k)}
elif job.startswith("tick-"):  # one tick per lake given, in one process (one Dagster import)
    from pipeline.store import Warehouse
    from sensors import harness
    today = dt.date.fromisoformat(sys.argv[3])
    since = today - dt.timedelta(days=harness.LOOKBACK_DAYS)
    for lake_home in [home, *map(Path, sys.argv[4:])]:
        tick, days = time.perf_counter(), len(list((lake_home / "lake" / "controls").iterdir()))
        if job == "tick-new":
            until = today + dt.timedelta(days=1)
            lake, dates = Warehouse(lake_home).lake, harness.window_dates(since, until)
            detail[f"files@{days}d"] = len(lake.files("evaluations", dates))
            harness.harness_shares(lake, dates, since)
        else:
            harness_sql = {"since": since, "threshold": harness.THRESHOLD}
            Warehouse(lake_home).scan(harness.HARNESS_SHARE_SQL, harness_sql)
        detail[f"tick_s@{days}d"] = round(time.perf_counter() - tick, 3)
io = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
usage, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({
    "wall_s": round(time.perf_counter() - began, 2),
    # the render workers' CPU too
    "cpu_s": round(usage.ru_utime + usage.ru_stime + workers.ru_utime + workers.ru_stime, 2),
    "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
    "worker_peak_rss_mb": round(workers.ru_maxrss / 1024, 1),
    "written_mb": round(int(io["wchar"]) / 1e6, 1),  # by this process; render workers' PNGs add theirs
    **detail,
}))
"""


def measure(code: Path, job: str, home: Path, *extra: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(code), CANDLEBENCH_HOME=str(home))
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, job, str(home), *extra],
        env=env,
        cwd=home,  # `-c` puts the working folder first on sys.path: not this tree
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        found = {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    else:
        found = json.loads(done.stdout.strip().splitlines()[-1])
    print(
        f"  {code.name if code != ROOT else 'new'} {job} {home.name} {extra}: {found}", flush=True
    )  # as it goes
    return found


def baseline_code(into: Path, repo: Path = ROOT) -> Path | None:
    """The report, store and sensors as of commit BASELINE, or None without git history."""
    try:
        archive = subprocess.run(
            ["git", "-C", str(repo), "archive", BASELINE, "pipeline", "sensors", "assets"],
            capture_output=True,
            check=True,
        ).stdout
    except (subprocess.CalledProcessError, FileNotFoundError):
        return None
    into.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def home_sharing(lake_home: Path, home: Path) -> Path:
    """A home reading `lake_home`'s lake (a symlink) with its own copy of the warehouse files."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "lake").symlink_to(lake_home / "lake")
    sync_warehouse(lake_home, home)
    return home


def sync_warehouse(source: Path, home: Path) -> None:
    for name in ("warehouse.duckdb", "warehouse.read.duckdb"):
        if (source / name).exists():
            shutil.copyfile(source / name, home / name)


def run(subjects: int, days: int, baseline: bool, scratch: Path, repo: Path = ROOT) -> dict:
    names = [f"bench-{i:03d}" for i in range(subjects)]
    history = [END - dt.timedelta(days=n) for n in range(days - 1, -1, -1)]
    world = scratch / "world"
    began = time.perf_counter()
    write_days(world, names, history)
    check_schema(world)
    built_s = time.perf_counter() - began
    aggregate_s = aggregate(world, history[0], END, names)
    print(
        f"world: {subjects} subjects x {days} days written {built_s:.0f} s, aggregated {aggregate_s:.0f} s",
        flush=True,
    )
    old = baseline_code(scratch / "old", repo) if baseline else None
    if baseline and old is None:
        print(f"no git history for {BASELINE}: baseline skipped")
    codes = {"new": ROOT, **({"old": old} if old else {})}
    homes = {name: home_sharing(world, scratch / f"home-{name}") for name in codes}
    result: dict = {"subjects": subjects, "days": days, "attempts": subjects * days * TASKS * TRIALS}
    for name, code in codes.items():
        result[f"{name}/first report"] = measure(code, "report", homes[name])
    # the sensor's tick on this lake, and on a 30-day lake of the same subjects
    month = scratch / "month"
    write_days(month, names, history[-30:])
    for name, code in codes.items():
        result[f"{name}/sensor ticks"] = measure(code, f"tick-{name}", world, str(END), str(month))
    next_day = END + dt.timedelta(days=1)
    write_days(world, names, [next_day])
    update_s = aggregate(world, next_day, next_day, names)
    print(f"one more day written and aggregated in {update_s:.0f} s", flush=True)
    for name, code in codes.items():
        sync_warehouse(world, homes[name])
        result[f"{name}/one-day update"] = measure(code, "report", homes[name])
    result["report folder MB"] = {
        name: round(sum(p.stat().st_size for p in (home / "report").rglob("*") if p.is_file()) / 1e6, 1)
        for name, home in homes.items()
    }
    result["setup"] = {"world_s": round(built_s, 1), "aggregate_s": round(aggregate_s, 1)}
    return result


def show(result: dict) -> None:
    rows = [k.split("/", 1) for k in result if "/" in k and isinstance(result[k], dict)]
    steps = list(dict.fromkeys(step for _, step in rows))
    print(f"\n{result['subjects']} subjects x {result['days']} days ({result['attempts']:,} graded attempts)")
    print(f"{'step':<24}{'code':<6}{'wall s':>9}{'CPU s':>9}{'peak MB':>9}{'written MB':>12}  detail")
    for step in steps:
        for code in ("old", "new"):
            found = result.get(f"{code}/{step}")
            if found is None:
                continue
            if "error" in found:
                print(f"{step:<24}{code:<6}  error: {found['error']}")
                continue
            detail = ", ".join(
                f"{k} {v}"
                for k, v in found.items()
                if k not in ("wall_s", "cpu_s", "peak_rss_mb", "written_mb")
            )
            detail = detail.replace("worker_peak_rss_mb", "worker peak MB")
            print(
                f"{step:<24}{code:<6}{found['wall_s']:>9}{found['cpu_s']:>9}{found['peak_rss_mb']:>9}"
                f"{found['written_mb']:>12}  {detail}"
            )
        old, new = result.get(f"old/{step}"), result.get(f"new/{step}")
        if old and new and "wall_s" in old and "wall_s" in new and new["wall_s"]:
            print(f"{'':<24}{'ratio':<6}{old['wall_s'] / new['wall_s']:>8.1f}x  old/new wall", end="")
            ticks = [k for k in new if k.startswith("tick_s@") and old.get(k)]
            print("".join(f", {k}: {old[k] / max(new[k], 1e-3):.0f}x" for k in ticks))
    print(f"report folder MB: {result['report folder MB']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=40)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--quick", action="store_true", help="3 subjects x 45 days")
    parser.add_argument("--no-baseline", action="store_true", help=f"skip the code of {BASELINE}")
    parser.add_argument("--out", default=None)
    parser.add_argument("--repo", default=str(ROOT), help=f"the git checkout to take {BASELINE} from")
    args = parser.parse_args()
    subjects, days = (3, 45) if args.quick else (args.subjects, args.days)
    name = "report_scale-quick.json" if args.quick else "report_scale.json"
    out = Path(args.out) if args.out else Path(__file__).parent / "results" / name
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory(prefix="report-scale-") as scratch:
        result = run(subjects, days, not args.no_baseline, Path(scratch), Path(args.repo))
    result["machine"] = {"cpus": os.cpu_count(), "load_1min": round(os.getloadavg()[0], 1)}
    show(result)
    print(f"wrote {write_result(out, result)}")


if __name__ == "__main__":
    main()
