"""Homes for the fault-injection suite (benchmarks/faults.py): running `candlebench` on a copy of a
home, dumping every stored table as rows of facts, and comparing them with the clean reference."""

from __future__ import annotations

import collections
import datetime as dt
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CANDLEBENCH = [sys.executable, "-m", "pipeline.cli"]
LAKE_TABLES = ("tasks", "samples", "controls", "attempts", "evaluations")
# Not facts: differ between two correct runs of the same history.
VOLATILE = {"run_id", "started_at", "duration_s", "computed_at", "artifact_dir", "cached", "transcript"}
BOUND_S = 600.0  # a command not finished by then is a hang
# A Python traceback, or the stack trace Dagster's console logger prints for a failed step.
TRACEBACKS = ("Traceback (most recent call last)", "Stack Trace:")


@dataclass
class Result:
    name: str
    kind: str
    outcome: str = "survived"  # survived | lost | hang | unclear | not reached
    lost: int = 0
    seconds: float = 0.0
    note: str = ""


@dataclass
class Setup:
    scratch: Path
    start: dt.date
    end: dt.date
    clean: Path = field(init=False)  # a configured home, nothing built
    built: Path = field(init=False)  # the reference home, history built
    reference: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.clean, self.built = self.scratch / "clean", self.scratch / "reference"

    @property
    def window(self) -> list[str]:
        return ["--from", self.start.isoformat(), "--to", self.end.isoformat()]


# --- running candlebench ------------------------------------------------------------------------


def environment(home: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DAGSTER_HOME", "CANDLEBENCH_CONFIG", "CANDLEBENCH_FAULT", "CANDLEBENCH_FAULT_DIR")
    }
    return {**env, "CANDLEBENCH_HOME": str(home), "PYTHONPATH": str(ROOT), **extra}


def candlebench(
    home: Path, args: list[str], timeout: float = BOUND_S, **extra: str
) -> tuple[int | None, str, str]:
    """Run `candlebench args` on `home`; (exit status or None on a hang, stdout, stderr)."""
    process = subprocess.Popen(
        CANDLEBENCH + args,
        cwd=home,
        env=environment(home, **extra),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=timeout)
        return process.returncode, out, err
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        return None, out, err


def has_traceback(text: str) -> bool:
    return any(mark in text for mark in TRACEBACKS)


def wait_for(condition, process: subprocess.Popen | None, timeout: float = BOUND_S) -> bool:
    """Poll `condition` until it holds (True), the process ended, or the bound passed (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if process is not None and process.poll() is not None:
            return bool(condition())
        time.sleep(0.02)
    return False


# --- the tables -----------------------------------------------------------------------------------


def facts(frame) -> collections.Counter:
    """A frame's rows, their fact columns only, as a multiset of JSON texts."""
    frame = frame.select(sorted(c for c in frame.columns if c not in VOLATILE))
    return collections.Counter(json.dumps(r, default=str, sort_keys=True) for r in frame.to_dicts())


def lake_partitions(home: Path) -> dict[str, collections.Counter]:
    """Every lake partition (its folder under lake/) as a multiset of rows of its fact columns."""
    import polars as pl

    lake = home / "lake"
    return {
        str(Path(path).parent.relative_to(lake)): facts(pl.read_parquet(path))
        for table in LAKE_TABLES
        for path in sorted(glob.glob(str(lake / table / "**" / "part.parquet"), recursive=True))
    }


def dump(home: Path) -> dict[str, collections.Counter]:
    """Every stored table as a multiset of rows of its fact columns."""
    import duckdb

    tables: dict[str, collections.Counter] = {f"lake.{table}": collections.Counter() for table in LAKE_TABLES}
    for partition, rows in lake_partitions(home).items():
        tables[f"lake.{partition.split('/')[0]}"].update(rows)
    db = home / "warehouse.duckdb"
    if db.exists():
        with duckdb.connect(str(db), read_only=True) as connection:
            names = [
                n
                for (n,) in connection.execute(
                    "SELECT table_name FROM duckdb_tables() WHERE NOT temporary"
                ).fetchall()
            ]
            for name in sorted(names):
                tables[f"warehouse.{name}"] = facts(connection.sql(f'SELECT * FROM "{name}"').pl())
    return tables


def rows_lost_or_wrong(reference: dict, got: dict) -> tuple[int, str]:
    """Reference rows missing or changed plus rows that should not be there; and where."""
    bad, where = 0, []
    for table in sorted(set(reference) | set(got)):
        want, have = reference.get(table, collections.Counter()), got.get(table, collections.Counter())
        missing, extra = sum((want - have).values()), sum((have - want).values())
        if missing or extra:
            bad += max(missing, extra)
            where.append(f"{table} -{missing}/+{extra}")
    return bad, ", ".join(where)


def fresh_copy(source: Path, scratch: Path, name: str) -> Path:
    target = Path(tempfile.mkdtemp(prefix=f"{name[:40]}-", dir=scratch)) / "home"
    shutil.copytree(source, target, symlinks=True)
    return target


def clean_up(home: Path) -> None:
    shutil.rmtree(home.parent, ignore_errors=True)


# --- the setup and the reference ------------------------------------------------------------------


def configure(home: Path, today: dt.date) -> None:
    """A demo home with a small panel, two trials and the process sandbox."""
    code = (
        "import datetime as dt, sys; from pipeline.config import pin_demo_config; "
        "c = pin_demo_config(dt.date.fromisoformat(sys.argv[1])); t = c.read_text(); "
        "t = t.replace('sandbox: auto', 'sandbox: process', 1).replace('size: 40', 'size: 4', 1)"
        ".replace('trials: 3', 'trials: 2', 1); c.write_text(t)"
    )
    subprocess.run(
        [sys.executable, "-c", code, today.isoformat()], check=True, cwd=ROOT, env=environment(home)
    )


def build_reference(setup: Setup) -> None:
    configure(setup.clean, setup.end)
    shutil.copytree(setup.clean, setup.built, symlinks=True)
    status, out, err = candlebench(setup.built, ["backfill", *setup.window])
    if status != 0:
        raise SystemExit(f"the reference run failed ({status}):\n{out[-2000:]}\n{err[-3000:]}")
    setup.reference = dump(setup.built)


def recover_and_compare(setup: Setup, home: Path, result: Result) -> Result:
    """Run the same backfill again, as a user would, then compare every table."""
    status, out, err = candlebench(home, ["backfill", *setup.window])
    if status is None:
        result.outcome, result.note = "hang", "the recovery backfill did not finish"
        return result
    if has_traceback(err):
        result.outcome, result.note = "unclear", "traceback in the recovery: " + err.strip().splitlines()[-1]
        return result
    if status != 0:
        result.outcome = "lost"
        result.note = f"recovery exit {status}: " + (out.strip().splitlines() or [""])[-1][:200]
    bad, where = rows_lost_or_wrong(setup.reference, dump(home))
    if bad:
        result.outcome, result.lost, result.note = "lost", bad, (result.note + " " + where).strip()
    return result
