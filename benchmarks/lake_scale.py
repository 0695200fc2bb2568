"""What the lake costs as history grows: a one-date candles refresh, a full rebuild, and a
compacted object lake, each against a raw DuckDB scan of the same Parquet, side by side.

    python benchmarks/lake_scale.py [--subjects 20] [--days 365] [--repeats 3] [--quick]
        [--out benchmarks/results/lake_scale.json]

A lake of `subjects x days` partitions of 50 tasks x 3 trials is synthesized in the project's
schema (benchmarks/backfill.py's `synthetic_lake`). Measured, median of `repeats`, wall and CPU
seconds of this process (DuckDB's threads included):
- one-date refresh: `refresh_candles` of the last day through the warehouse writer, as the
  candles asset runs it (its views hold that day's files), and as it ran before (views over the
  whole lake), each against a raw DuckDB scan that reads every column of that day's files;
- full rebuild: `refresh_candles` over every day against a raw scan of every file;
- object storage (when `CANDLEBENCH_TEST_S3` names an S3 server, `.ci/s3.sh`): two months of 4
  of the subjects written to S3, then a per-day query over it before and after `compact`.
The goals: the one-date refresh within 2x its raw scan, the rebuild within 2x of its raw scan.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from backfill import TASKS, TRIALS, synthetic_lake  # benchmarks/ is on sys.path as the script's folder
from record import result_path, write_result

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.store.candles import refresh_candles  # noqa: E402
from pipeline.store.warehouse import Warehouse  # noqa: E402

RAW = "SELECT count(*), count(DISTINCT COLUMNS(*)) FROM read_parquet({files}, union_by_name = true)"


def timed(fn, repeats: int) -> dict:
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return {"wall_s": round(statistics.median(walls), 4), "cpu_s": round(statistics.median(cpus), 4)}


def raw_scan(warehouse: Warehouse, tables: tuple[str, ...], dates: list[str] | None) -> None:
    import duckdb

    with duckdb.connect() as connection:
        warehouse.lake.register(connection)
        for table in tables:
            files = warehouse.lake.files(table, dates)
            listed = "[" + ", ".join(f"'{f}'" for f in files) + "]"
            connection.execute(RAW.format(files=listed)).fetchall()


def refresh(warehouse: Warehouse, start: dt.date, end: dt.date, windowed: bool) -> None:
    days = [(start + dt.timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]
    with warehouse.writer(dates=days if windowed else None) as connection:
        refresh_candles(connection, start, end, "bench", [])


def measure(root: Path, start: dt.date, end: dt.date, repeats: int) -> dict:
    warehouse = Warehouse(root)
    tables = ("attempts", "evaluations", "controls")
    last = [end.isoformat()]
    refresh(warehouse, start, end, True)  # the tables exist; file caches warm for everyone
    one_new = timed(lambda: refresh(warehouse, end, end, True), repeats)
    one_old = timed(lambda: refresh(warehouse, end, end, False), repeats)
    one_raw = timed(lambda: raw_scan(warehouse, tables, last), repeats)
    full = timed(lambda: refresh(warehouse, start, end, True), repeats)
    full_raw = timed(lambda: raw_scan(warehouse, tables, None), repeats)
    return {
        "one_date_refresh": one_new,
        "one_date_refresh_whole_lake_views": one_old,
        "one_date_raw_scan": one_raw,
        "one_date_ratio_cpu": round(one_new["cpu_s"] / one_raw["cpu_s"], 2),
        "one_date_ratio_wall": round(one_new["wall_s"] / one_raw["wall_s"], 2),
        "one_date_whole_lake_ratio_cpu": round(one_old["cpu_s"] / one_raw["cpu_s"], 2),
        "full_rebuild": full,
        "full_raw_scan": full_raw,
        "full_ratio_cpu": round(full["cpu_s"] / full_raw["cpu_s"], 2),
        "full_ratio_wall": round(full["wall_s"] / full_raw["wall_s"], 2),
    }


def compaction(root: Path, start: dt.date, days: int, subjects: list[str], repeats: int) -> dict | None:
    if not os.environ.get("CANDLEBENCH_TEST_S3"):
        return None
    from pipeline.store.objects import ObjectLake

    uri = f"s3://candlebench/bench-{uuid.uuid4().hex[:8]}"
    os.environ["CANDLEBENCH_LAKE"] = uri
    try:
        synthetic_lake(root, start, days, subjects)
        warehouse = Warehouse(root)
        lake: ObjectLake = warehouse.lake  # type: ignore[assignment]
        per_day = "SELECT date, subject, avg(resolved::INT) FROM evaluations GROUP BY ALL"
        loose = timed(lambda: warehouse.scan(per_day), repeats)
        objects_before = len(lake.files("evaluations"))
        months = sorted({(start + dt.timedelta(days=i)).isoformat()[:7] for i in range(days)})
        began = time.perf_counter()
        for month in months:
            lake.compact("evaluations", month)
        compact_s = time.perf_counter() - began
        compacted = timed(lambda: warehouse.scan(per_day), repeats)
        return {
            "objects_before": objects_before,
            "objects_after": len(lake.files("evaluations")),
            "query_loose": loose,
            "query_compacted": compacted,
            "compact_s": round(compact_s, 2),
            "compacted_cheaper_wall": round(loose["wall_s"] / compacted["wall_s"], 2),
        }
    finally:
        os.environ.pop("CANDLEBENCH_LAKE", None)
        from pipeline.store.objects import s3_filesystem

        s3_filesystem().rm(uri, recursive=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subjects", type=int, default=20)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=TASKS, help="tasks per partition")
    parser.add_argument("--trials", type=int, default=TRIALS, help="trials per task")
    parser.add_argument("--no-s3", action="store_true", help="skip the object-storage part")
    parser.add_argument("--quick", action="store_true", help="4 subjects x 30 days, 2 repeats")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    subjects_n, days, repeats = (4, 30, 2) if args.quick else (args.subjects, args.days, args.repeats)
    subjects = [f"bench-{i}" for i in range(subjects_n)]
    end = dt.date(2026, 11, 30)
    start = end - dt.timedelta(days=days - 1)
    os.environ.pop("CANDLEBENCH_LAKE", None)
    with tempfile.TemporaryDirectory(prefix="cb-lake-scale-") as tmp:
        began = time.perf_counter()
        synthetic_lake(Path(tmp) / "local", start, days, subjects, args.tasks, args.trials)
        built = time.perf_counter() - began
        local = measure(Path(tmp) / "local", start, end, repeats)
        # object storage answers per request: a smaller lake (2 months, 4 subjects; quick: 1, 2)
        s3_days, s3_subjects = (31, subjects[:2]) if args.quick else (min(days, 61), subjects[:4])
        s3 = None
        if not args.no_s3:
            s3 = compaction(
                Path(tmp) / "s3", end - dt.timedelta(days=s3_days - 1), s3_days, s3_subjects, repeats
            )
    attempts = subjects_n * days * args.tasks * args.trials
    result = {
        "subjects": subjects_n,
        "days": days,
        "tasks": args.tasks,
        "trials": args.trials,
        "graded_attempts": attempts,
        "synthesis_s": round(built, 1),
        "local": local,
        "s3_compaction": s3,
        "load_average_1m": os.getloadavg()[0],
    }
    print(f"lake of {subjects_n} subjects x {days} days = {attempts:,} graded attempts")
    print(f"{'measure':44} {'wall s':>8} {'CPU s':>8}")
    for key in (
        "one_date_refresh",
        "one_date_refresh_whole_lake_views",
        "one_date_raw_scan",
        "full_rebuild",
        "full_raw_scan",
    ):
        print(f"{key:44} {local[key]['wall_s']:>8} {local[key]['cpu_s']:>8}")
    print(
        f"one-date refresh / raw scan of its files (CPU): {local['one_date_ratio_cpu']}x "
        f"(whole-lake views: {local['one_date_whole_lake_ratio_cpu']}x)"
    )
    print(f"full rebuild / raw scan (CPU): {local['full_ratio_cpu']}x")
    if s3:
        print(
            f"S3, {s3['objects_before']} objects -> {s3['objects_after']} compacted: per-day query "
            f"{s3['query_loose']['wall_s']} s -> {s3['query_compacted']['wall_s']} s "
            f"({s3['compacted_cheaper_wall']}x cheaper)"
        )
    else:
        print("S3: not available (CANDLEBENCH_TEST_S3 unset; .ci/s3.sh starts a server)")
    out = write_result(result_path("lake_scale", args.quick, args.out), result)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
