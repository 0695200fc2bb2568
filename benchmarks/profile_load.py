"""Concurrent partition runs on one Dagster instance: the local profile (SQLite) against the
postgres profile, the same load side by side.

    python benchmarks/profile_load.py [--days 15] [--profiles local,postgres] [--quick]
        [--out benchmarks/results/profile_load.json]

The load: a small demo config (3 tasks, 1 trial, the process sandbox), the window's catalog,
sample and controls in one run, then `days` x 2 subjects `date x subject` partitions launched at
once, each its own `dagster asset materialize` process (as many workers of a team would), all
on one instance: its runs, events and the `sandbox` pool's slots. Counted per profile: runs that
failed, lock errors in any output ("database is locked", "deadlock", ...), partitions whose 3
attempts or 3 evaluations are not all in the lake (lost rows), and the wall time. The postgres
profile needs the CANDLEBENCH_PG_* variables (`.ci/postgres.sh`); each profile gets a fresh
database or home. tests/test_deploy.py runs the same load (`run_load`) on PostgreSQL and asserts
0 failures, 0 lock errors and 0 lost rows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SUBJECTS = ("sim-claude-code", "sim-codex")
TASKS = 3
LOCK_WORDS = ("database is locked", "deadlock", "could not serialize", "lock timeout", "locknotavailable")

PREPARE = """
import datetime as dt, sys
import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from pipeline.config import load_config
from pipeline.orchestration.history import QUIET, prepare_dagster_home
start, days = dt.date.fromisoformat(sys.argv[1]), int(sys.argv[2])
prepare_dagster_home()
from pipeline.definitions import defs
window = {ASSET_PARTITION_RANGE_START_TAG: start.isoformat(),
          ASSET_PARTITION_RANGE_END_TAG: (start + dt.timedelta(days=days - 1)).isoformat()}
with dg.DagsterInstance.get() as instance:
    instance.add_dynamic_partitions("subject", [s.name for s in load_config().subjects])
    for job, tags in (("catalog_job", {}), ("daily_job", window)):
        result = defs.resolve_job_def(job).execute_in_process(
            instance=instance, run_config=QUIET, tags=tags, raise_on_error=False)
        assert result.success, job
"""


@dataclass
class Load:
    partitions: int
    wall_s: float
    failed: list[str] = field(default_factory=list)
    lock_errors: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    tail: str = ""


def small_home(root: Path, start: dt.date, days: int) -> Path:
    """A home whose config samples 3 demo tasks, 1 trial, graded in the process sandbox."""
    import yaml

    from pipeline.config import pin_demo_config

    config = pin_demo_config(start + dt.timedelta(days=days), root)
    raw = yaml.safe_load(config.read_text())
    raw.update(trials=1, sandbox="process", start_date=start.isoformat(), sandbox_workers=1)
    raw["sample"]["size"] = TASKS
    config.write_text(yaml.safe_dump(raw))
    return root


def run_load(home: Path, env: dict[str, str], start: dt.date, days: int, logs: Path) -> Load:
    """Prepare the window in one process, then run its `days` x 2 partitions all at once."""
    prepared = subprocess.run(
        [sys.executable, "-c", PREPARE, start.isoformat(), str(days)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if prepared.returncode != 0:
        raise RuntimeError(f"preparing the window failed: {prepared.stderr[-3000:]}")
    env = {**env, "DAGSTER_HOME": str(home / "dagster")}
    dates = [(start + dt.timedelta(days=i)).isoformat() for i in range(days)]
    partitions = [(d, s) for d in dates for s in SUBJECTS]
    logs.mkdir(parents=True, exist_ok=True)
    began, processes = time.monotonic(), []
    for day, subject in partitions:
        out = (logs / f"{day}-{subject}.log").open("w")
        command = [
            str(BIN / "dagster"),
            "asset",
            "materialize",
            "-m",
            "pipeline.definitions",
            "--select",
            "agent_attempts,patch_evaluations",
            "--partition",
            f"{day}|{subject}",
        ]
        processes.append(
            (subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT), out)
        )
    for process, out in processes:
        process.wait(timeout=3600)
        out.close()
    load = Load(len(partitions), time.monotonic() - began)
    load.failed = [p.args[-1] for p, _ in processes if p.returncode != 0]
    for log in sorted(logs.iterdir()):
        text = log.read_text().lower()
        load.lock_errors += [f"{log.stem}: {w}" for w in LOCK_WORDS if w in text]
    load.tail = "\n".join(log.read_text()[-1500:] for log in sorted(logs.iterdir())[:2])

    from pipeline.store.lake import Lake

    lake = Lake(home / "lake")
    for day, subject in partitions:
        for table in ("attempts", "evaluations"):
            frame = lake.read_partition(table, subject=subject, date=day)
            if frame is None or frame.height != TASKS:
                load.lost.append(f"{table} {day} {subject}: {0 if frame is None else frame.height} rows")
    return load


def _environment(profile: str, home: Path) -> tuple[dict[str, str], str | None]:
    """The environment of one profile's load (a fresh database for postgres), and that database."""
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "CANDLEBENCH_CONFIG")}
    env.update(
        CANDLEBENCH_HOME=str(home), CANDLEBENCH_PROFILE=profile, PATH=f"{BIN}{os.pathsep}{env['PATH']}"
    )
    if profile != "postgres":
        return env, None
    database = f"cb_load_{uuid.uuid4().hex[:8]}"
    _admin(f"create database {database}")
    return {**env, "CANDLEBENCH_PG_DB": database}, database


def _admin(sql: str) -> None:
    """One statement outside a transaction (create/drop database) on the profile's PostgreSQL."""
    from pipeline.config import profiles

    connection = profiles.connect()
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
    finally:
        connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=15)
    parser.add_argument("--profiles", default="local,postgres")
    parser.add_argument("--quick", action="store_true", help="1 day x 2 subjects")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from record import write_result

    from pipeline.config import ConfigError, profiles

    days = 1 if args.quick else args.days
    out = args.out or f"benchmarks/results/profile_load{'-quick' if args.quick else ''}.json"
    start = dt.date(2026, 11, 1)
    rows = []
    for profile in args.profiles.split(","):
        if profile == "postgres":
            try:
                profiles.check_postgres()
            except ConfigError as err:
                print(f"{profile}: not available: {err}")
                rows.append({"profile": profile, "available": False, "why": str(err)})
                continue
        with tempfile.TemporaryDirectory(prefix=f"cb-load-{profile}-") as tmp:
            home = small_home(Path(tmp) / "home", start, days)
            env, database = _environment(profile, home)
            try:
                load = run_load(home, env, start, days, Path(tmp) / "logs")
            finally:
                if database:
                    _admin(f"drop database if exists {database} with (force)")
        rows.append(
            {
                "profile": profile,
                "available": True,
                "partitions": load.partitions,
                "failed": len(load.failed),
                "lock_errors": len(load.lock_errors),
                "lost_partitions": len(load.lost),
                "wall_s": round(load.wall_s, 1),
                "examples": (load.lock_errors + load.lost + load.failed)[:5],
            }
        )
    print(f"{'profile':10} {'partitions':>10} {'failed':>7} {'lock errors':>12} {'lost':>5} {'wall s':>7}")
    for r in rows:
        if r["available"]:
            print(
                f"{r['profile']:10} {r['partitions']:>10} {r['failed']:>7} {r['lock_errors']:>12} "
                f"{r['lost_partitions']:>5} {r['wall_s']:>7}"
            )
    load_average = os.getloadavg()[0]
    write_result(out, {"days": days, "tasks": TASKS, "load_average_1m": load_average, "profiles": rows})
    print(f"load average {load_average:.1f}; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
