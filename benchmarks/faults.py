"""Faults and bad inputs injected as a user's machine meets them, every table compared row by row.

    python benchmarks/faults.py [--quick] [--jobs 2] [--out benchmarks/results/faults.json]

A clean seeded reference run (a short demo history, two simulated subjects, the process sandbox)
is built through `candlebench backfill` in a temporary home and its tables dumped: the lake
(samples, controls, attempts, evaluations, tasks) and every warehouse table, keeping the columns
that are facts (run ids, timestamps, durations, paths and cache flags dropped). Then each fault
runs in a fresh copy of the setup:

- kill -9 at a named point (pipeline/faults.py, `CANDLEBENCH_FAULT=kill:<point>@<n>`): inside an
  attempt, between a lake partition's temporary write and its rename, after grading, inside the
  candles transaction, between changepoint tables, while the read snapshot is published; or from
  outside, when the n-th grading artifact appears (mid-grading); then the same `candlebench
  backfill` is run again, as a user would, and every table compared with the reference;
- readers beside a writer paused inside its transaction (`pause:<point>`): `candlebench query`
  must answer while the writer holds the warehouse; two backfills racing on one home;
- a full disk: the home on a small tmpfs: the error must say disk full, stored rows must survive;
- bad inputs for every file and flag a user hands over: exit status != 0, a last stderr line
  naming the input, no traceback, no stored row lost.

Outcomes: survived, rows lost or wrong (rows of the reference missing or changed, or extra),
hang (not finished within the bound), unclear error (a traceback, exit 0 on bad input, or an
error that does not name the input).
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
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

from record import write_result  # benchmarks/record.py: the script's folder is on sys.path

from pipeline.tasks.model import PRO_FIELDS

ROOT = Path(__file__).resolve().parents[1]
CANDLEBENCH = [sys.executable, "-m", "pipeline.cli"]
LAKE_TABLES = ("tasks", "samples", "controls", "attempts", "evaluations")
# Not facts: differ between two correct runs of the same history.
VOLATILE = {"run_id", "started_at", "duration_s", "computed_at", "artifact_dir", "cached", "transcript"}
BOUND_S = 600.0  # a command not finished by then is a hang


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


def dump(home: Path) -> dict[str, collections.Counter]:
    """Every stored table as a multiset of rows of its fact columns."""
    import duckdb
    import polars as pl

    tables: dict[str, collections.Counter] = {}
    for table in LAKE_TABLES:
        files = sorted(glob.glob(str(home / "lake" / table / "**" / "part.parquet"), recursive=True))
        rows: collections.Counter = collections.Counter()
        for path in files:
            frame = pl.read_parquet(path)
            frame = frame.select(sorted(c for c in frame.columns if c not in VOLATILE))
            rows.update(json.dumps(r, default=str, sort_keys=True) for r in frame.to_dicts())
        tables[f"lake.{table}"] = rows
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
                frame = connection.sql(f'SELECT * FROM "{name}"').pl()
                frame = frame.select(sorted(c for c in frame.columns if c not in VOLATILE))
                tables[f"warehouse.{name}"] = collections.Counter(
                    json.dumps(r, default=str, sort_keys=True) for r in frame.to_dicts()
                )
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


# --- faults ---------------------------------------------------------------------------------------


def recover_and_compare(setup: Setup, home: Path, result: Result) -> Result:
    """Run the same backfill again, as a user would, then compare every table."""
    status, out, err = candlebench(home, ["backfill", *setup.window])
    if status is None:
        result.outcome, result.note = "hang", "the recovery backfill did not finish"
        return result
    if "Traceback" in err:
        result.outcome, result.note = "unclear", "traceback in the recovery: " + err.strip().splitlines()[-1]
        return result
    if status != 0:
        result.outcome = "lost"
        result.note = f"recovery exit {status}: " + (out.strip().splitlines() or [""])[-1][:200]
    bad, where = rows_lost_or_wrong(setup.reference, dump(home))
    if bad:
        result.outcome, result.lost, result.note = "lost", bad, (result.note + " " + where).strip()
    return result


def kill_at(setup: Setup, point: str, nth: int = 1) -> Result:
    """kill -9 at the n-th time the backfill reaches `point`, then recover."""
    result = Result(f"kill -9 at {point} #{nth}", "kill")
    home = fresh_copy(setup.clean, setup.scratch, f"kill-{point}-{nth}")
    signals = home.parent / "signals"
    signals.mkdir()
    status, _, err = candlebench(
        home,
        ["backfill", *setup.window],
        CANDLEBENCH_FAULT=f"kill:{point}@{nth}",
        CANDLEBENCH_FAULT_DIR=str(signals),
    )
    if not (signals / "hit").exists():
        result.outcome = "hang" if status is None else "not reached"
        result.note = f"exit {status}; the point was not reached"
        clean_up(home)
        return result
    recover_and_compare(setup, home, result)
    clean_up(home)
    return result


def kill_mid_grading(setup: Setup, nth: int, group: bool = True) -> Result:
    """kill -9 the backfill when the n-th grading artifact folder appears: its whole process group,
    or (`group=False`) the orchestrating CLI alone, whose grading children must then not go on."""
    who = "process group" if group else "CLI alone"
    result = Result(f"kill -9 ({who}) when grading artifact #{nth} appears", "kill")
    home = fresh_copy(setup.clean, setup.scratch, f"kill-grading-{nth}-{group}")
    process = subprocess.Popen(
        CANDLEBENCH + ["backfill", *setup.window],
        cwd=home,
        env=environment(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    artifacts = home / "artifacts"
    reached = wait_for(lambda: len(glob.glob(str(artifacts / "*" / "*"))) >= nth, process)
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL) if group else os.kill(process.pid, signal.SIGKILL)
    process.wait()
    if not reached:
        result.outcome, result.note = "not reached", "fewer artifacts than asked"
    elif not wait_for(lambda: not orphans(process.pid), None, timeout=120):
        result.outcome, result.note = "hang", f"children of the killed CLI still run: {orphans(process.pid)}"
        os.killpg(process.pid, signal.SIGKILL)
    else:
        recover_and_compare(setup, home, result)
    clean_up(home)
    return result


def orphans(session: int) -> list[int]:
    """Processes still alive in the killed command's session (its children)."""
    alive = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (
                    os.getsid(int(entry.name)) == session
                    and "Z" not in (entry / "stat").read_text().split()[2]
                ):
                    alive.append(int(entry.name))
            except (OSError, IndexError):
                continue
    return alive


READER_SQL = (
    "SELECT count(*) AS n FROM candles",
    "SELECT count(*) AS n FROM attempts",
    "SELECT subject, count(*) AS n FROM evaluations GROUP BY ALL ORDER BY 1",
)


def reader_beside_writer(setup: Setup, point: str) -> Result:
    """A re-run of the built history pauses at `point` (holding the warehouse or mid-write);
    `candlebench query` must answer meanwhile; then the writer goes on and the tables still match."""
    result = Result(f"query while the writer pauses at {point}", "concurrency")
    home = fresh_copy(setup.built, setup.scratch, f"reader-{point}")
    signals = home.parent / "signals"
    signals.mkdir()
    writer = subprocess.Popen(
        CANDLEBENCH + ["backfill", *setup.window, "--redo"],
        cwd=home,
        env=environment(home, CANDLEBENCH_FAULT=f"pause:{point}", CANDLEBENCH_FAULT_DIR=str(signals)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        if not wait_for(lambda: (signals / "hit").exists(), writer):
            result.outcome, result.note = "not reached", f"writer exit {writer.poll()}"
            return result
        for sql in READER_SQL:
            status, out, err = candlebench(home, ["query", sql, "--format", "csv"], timeout=120)
            if status is None:
                result.outcome, result.note = "hang", f"query {sql!r} waited behind the writer"
                return result
            if status != 0 or "Traceback" in err:
                result.outcome, result.note = "unclear", f"query {sql!r}: exit {status}: {err.strip()[-200:]}"
                return result
        (signals / "release").touch()
        try:
            out, err = writer.communicate(timeout=BOUND_S)
        except subprocess.TimeoutExpired:
            result.outcome, result.note = "hang", "the paused writer did not finish after release"
            return result
        if writer.returncode != 0:
            result.outcome, result.note = "lost", f"writer exit {writer.returncode}: {out.strip()[-200:]}"
        bad, where = rows_lost_or_wrong(setup.reference, dump(home))
        if bad:
            result.outcome, result.lost, result.note = "lost", bad, where
        return result
    finally:
        (signals / "release").touch()
        if writer.poll() is None:
            os.killpg(writer.pid, signal.SIGKILL)
            writer.wait()
        clean_up(home)


def racing_backfills(setup: Setup) -> Result:
    """Two `candlebench backfill` of the same window on one fresh home at once."""
    result = Result("two backfills racing on one home", "concurrency")
    home = fresh_copy(setup.clean, setup.scratch, "race")
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda _: candlebench(home, ["backfill", *setup.window]), range(2)))
    if any(status is None for status, _, _ in runs):
        result.outcome, result.note = "hang", "a racing backfill did not finish"
    elif any("Traceback" in err for _, _, err in runs):
        result.outcome, result.note = "unclear", "traceback in a racing backfill"
    if result.outcome == "survived":
        recover_and_compare(setup, home, result)  # a failed racer is re-run, as a user would
    clean_up(home)
    return result


def full_disk(setup: Setup, free_kb: int, redo: bool) -> Result:
    """The built home on a tmpfs with `free_kb` left; a re-run must say disk full and keep every
    stored row; with the space freed, the same command must then complete the history."""
    result = Result(f"disk full ({free_kb} KiB free) during backfill{' --redo' if redo else ''}", "disk")
    mount = Path(tempfile.mkdtemp(prefix="full-", dir=setup.scratch))
    size_kb = sum(f.stat().st_size for f in setup.built.rglob("*") if f.is_file()) // 1024 + 8192
    if (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(mount)], capture_output=True
        ).returncode
        != 0
    ):
        result.outcome, result.note = "not reached", "cannot mount a tmpfs (needs root)"
        return result
    try:
        home = mount / "home"
        shutil.copytree(setup.built, home, symlinks=True)
        if not redo:  # a half-built window: the last day's partitions and the aggregates to do again
            for path in glob.glob(str(home / "lake" / "*" / "**" / f"date={setup.end}"), recursive=True):
                shutil.rmtree(path)
        filler = mount / "filler"
        with filler.open("wb") as handle:
            handle.write(b"\0" * max(shutil.disk_usage(mount).free - free_kb * 1024, 0))
        status, out, err = candlebench(home, ["backfill", *setup.window, *(["--redo"] if redo else [])])
        said = (out + err).lower()
        lines = [line for line in err.strip().splitlines() if line.strip()]
        if status is None:
            result.outcome, result.note = "hang", "the backfill on a full disk did not finish"
            return result
        if "Traceback" in err or status == 0 or "disk full" not in said:
            result.outcome = "unclear"
            result.note = f"exit {status}: " + ((lines or out.strip().splitlines() or [""])[-1])[:200]
        else:
            result.note = next(
                (line for line in (out + err).splitlines() if "disk full" in line.lower()), ""
            )[:160]
        if redo:  # everything was stored before: nothing may be lost or changed
            bad, where = rows_lost_or_wrong(setup.reference, dump(home))
            if bad:
                result.outcome, result.lost, result.note = "lost", bad, where
                return result
        filler.unlink()
        recover_and_compare(setup, home, result)
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)
        shutil.rmtree(mount, ignore_errors=True)
    return result


# --- bad inputs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BadInput:
    """A user hands over `file` with `content` (or a flag), runs `args`; the error must name `needle`."""

    name: str
    args: tuple[str, ...]
    needle: str
    file: str | None = None  # relative to the home
    content: str | None = None
    edit: tuple[str, str] | None = None  # replace old with new in `file`
    also: tuple[tuple[str, str], ...] = ()  # further files (name, content) handed over with it


def tracking_edits(day: str) -> list[tuple[str, tuple[str, str], str]]:
    """(what, (old, new) in tracking.yaml, the word the error must name)."""
    after = (dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat()
    out = [
        ("sample.size 0", ("size: 4", "size: 0"), "size"),
        ("sample.size -3", ("size: 4", "size: -3"), "size"),
        ("sample.size text", ("size: 4", "size: many"), "size"),
        ("sample.seed text", ("seed: 20260101", "seed: abc"), "seed"),
        ("sample.design unknown", ("design: panel", "design: random"), "design"),
        ("sample unknown field", ("design: panel", "design: panel\n  colour: red"), "colour"),
        ("trials 0", ("trials: 2", "trials: 0"), "trials"),
        ("trials -1", ("trials: 2", "trials: -1"), "trials"),
        ("trials 1.5", ("trials: 2", "trials: 1.5"), "trials"),
        ("trials list", ("trials: 2", "trials: [2]"), "trials"),
        ("sandbox unknown", ("sandbox: process", "sandbox: chroot"), "sandbox"),
        ("grading_workers 0", ("grading_workers: 2", "grading_workers: 0"), "grading_workers"),
        ("grading_workers text", ("grading_workers: 2", "grading_workers: two"), "grading_workers"),
        ("grading_timeout_s 0", ("grading_timeout_s: 120", "grading_timeout_s: 0"), "grading_timeout_s"),
        ("grading_timeout_s -5", ("grading_timeout_s: 120", "grading_timeout_s: -5"), "grading_timeout_s"),
        ("history_days 0", ("history_days: 95", "history_days: 0"), "history_days"),
        ("history_days text", ("history_days: 95", "history_days: lots"), "history_days"),
        ("start_date month 13", ("start_date: ", "start_date: 2026-13-01 #"), "start_date"),
        ("start_date text", ("start_date: ", "start_date: yesterday #"), "start_date"),
        ("start_date after the window", ("start_date: ", f"start_date: {after} #"), "start_date"),
        ("schedule.cron bad", ('cron: "0 6 * * *"', 'cron: "every day"'), "cron"),
        ("schedule.cron 6 fields", ('cron: "0 6 * * *"', 'cron: "0 0 6 * * *"'), "cron"),
        ("schedule.timezone unknown", ("timezone: UTC", "timezone: Mars/Olympus"), "timezone"),
        ("schedule unknown field", ("timezone: UTC", "timezone: UTC\n  jitter: 5"), "jitter"),
        ("unknown top-level field", ("trials: 2", "trials: 2\ntrails: 3"), "trails"),
        ("suite missing file", ("suite: demo", "suite: /nonexistent/rows.jsonl"), "suite"),
        ("subject adapter unknown", ("adapter: simulated", "adapter: gpt-magic"), "adapter"),
        ("subject scenario missing", ("scenario: scenario.yaml", "scenario: nowhere.yaml"), "scenario"),
        ("subject unknown field", ("adapter: simulated", "adapter: simulated\n    colour: blue"), "colour"),
        ("subject trials 0", ("adapter: simulated", "adapter: simulated\n    trials: 0"), "trials"),
        (
            "subject daily_cost_cap_usd -1",
            ("adapter: simulated", "adapter: simulated\n    daily_cost_cap_usd: -1"),
            "daily_cost_cap_usd",
        ),
        ("subject name duplicate", ("name: sim-codex", "name: sim-claude-code"), "unique"),
        ("subject name missing", ("- name: sim-codex", "- label: x"), "name"),
        ("prices not a mapping", ("trials: 2", "trials: 2\nprices: 5"), "prices"),
        ("prices negative", ("trials: 2", "trials: 2\nprices: {m: {input: -1, output: 1}}"), "prices"),
        ("alerts bad url", ("trials: 2", "trials: 2\nalerts: [{url: 'ftp://x', format: slack}]"), "url"),
        ("confirm_trials -1", ("trials: 2", "trials: 2\nconfirm_trials: -1"), "confirm_trials"),
        (
            "allow_untrusted... not a bool",
            ("trials: 2", "trials: 2\nallow_untrusted_patches_without_sandbox: maybe"),
            "allow_untrusted_patches_without_sandbox",
        ),
    ]
    for bad_name, shown in (
        ("sim[1]", "name"),
        ("sim*", "name"),
        ("sim?", "name"),
        ("a" * 300, "name"),
        ("'sim\\ncodex'", "name"),
        ("../escape", "name"),
        ("sim codex", "name"),
        ("''", "name"),
        ("-leading-dash", "name"),
        ("sim/codex", "name"),
    ):
        out.append((f"subject name {bad_name[:20]!s}", ("name: sim-codex", f"name: {bad_name}"), shown))
    return out


SCENARIO_EDITS = [
    ("pass_rate 1.5", ("pass_rate: 0.40}", "pass_rate: 1.5}"), "pass_rate"),
    ("pass_rate -0.1", ("pass_rate: 0.40}", "pass_rate: -0.1}"), "pass_rate"),
    ("pass_rate text", ("pass_rate: 0.40}", "pass_rate: high}"), "pass_rate"),
    ("phase day 0", ("{day: 1, version: opus-4.6", "{day: 0, version: opus-4.6"), "day"),
    ("phases out of order", ("{day: 51, version: opus-4.7", "{day: 1, version: opus-4.7"), "day"),
    ("phase missing version", ("version: opus-4.6, ", ""), "version"),
    ("noise -1", ("noise: 0.12", "noise: -1"), "noise"),
    ("noise text", ("noise: 0.12", "noise: loud"), "noise"),
    (
        "failure weights all zero",
        (
            "empty: 0.15\n  partial: 0.20\n  wrong_fix: 0.45\n  does_not_apply: 0.20",
            "empty: 0\n  partial: 0\n  wrong_fix: 0\n  does_not_apply: 0",
        ),
        "failure_modes",
    ),
    ("failure weight negative", ("empty: 0.15", "empty: -0.5"), "empty"),
    ("failure mode unknown", ("empty: 0.15", "exploded: 0.15"), "exploded"),
    (
        "difficulty level unknown",
        ("difficulty: {}", "difficulty: {demo__calcexpr-001: impossible}"),
        "difficulty",
    ),
    ("difficulty_levels text", ("easy: -1.4", "easy: simple"), "easy"),
    ("scenario start_date month 13", ("start_date: ", "start_date: 2026-13-40 #"), "start_date"),
    ("scenario subject without phases", ("  sim-codex:\n", "  sim-codex: []\n  unused:\n"), "sim-codex"),
    ("scenario seed text", ("seed: 7", "seed: lucky"), "seed"),
]


def bad_inputs(setup: Setup) -> list[BadInput]:
    day, first = setup.end.isoformat(), setup.start.isoformat()
    window = ("backfill", "--from", day, "--to", day)
    cases = [
        BadInput(f"tracking.yaml: {what}", window, needle, "tracking.yaml", edit=edit)
        for what, edit, needle in tracking_edits(day)
    ]
    cases += [
        BadInput(f"scenario.yaml: {what}", window, needle, "scenario.yaml", edit=edit)
        for what, edit, needle in SCENARIO_EDITS
    ]
    tracking = (setup.built / "tracking.yaml").read_text()
    cases.append(
        BadInput(
            "tracking.yaml: subjects missing",
            window,
            "subjects",
            "tracking.yaml",
            tracking[: tracking.index("\nsubjects:")] + "\n",
        )
    )
    cases += [
        BadInput(
            "tracking.yaml: not YAML", window, "tracking.yaml", "tracking.yaml", "subjects: [\n  - {name: x"
        ),
        BadInput("tracking.yaml: a list", window, "tracking.yaml", "tracking.yaml", "- 1\n- 2\n"),
        BadInput("tracking.yaml: empty", window, "tracking.yaml", "tracking.yaml", ""),
        BadInput("tracking.yaml: binary", window, "tracking.yaml", "tracking.yaml", "\x00\x01\x02\xff"),
        BadInput("scenario.yaml: not YAML", window, "scenario.yaml", "scenario.yaml", "subjects: {\n"),
        BadInput("scenario.yaml: empty", window, "scenario.yaml", "scenario.yaml", ""),
        BadInput("scenario.yaml: a string", window, "scenario.yaml", "scenario.yaml", "hello\n"),
        BadInput("CANDLEBENCH_CONFIG missing file", window, "tracking", None),
        # command-line dates, windows and subjects
        BadInput("backfill --from not a date", ("backfill", "--from", "yesterday", "--to", day), "--from"),
        BadInput("backfill --from month 13", ("backfill", "--from", "2026-13-01", "--to", day), "--from"),
        BadInput("backfill --to day 32", ("backfill", "--from", day, "--to", "2026-12-32"), "--to"),
        BadInput(
            "backfill --to before --from",
            ("backfill", "--from", day, "--to", first if first < day else "2000-01-01"),
            "before",
        ),
        BadInput(
            "backfill before start_date",
            ("backfill", "--from", "2001-01-01", "--to", "2001-01-02"),
            "start_date",
        ),
        BadInput(
            "backfill in the future", ("backfill", "--from", "2999-01-01", "--to", "2999-01-02"), "future"
        ),
        BadInput("backfill --subject unknown", (*window, "--subject", "nobody"), "nobody"),
        BadInput("backfill --subject glob", (*window, "--subject", "sim-*"), "sim-*"),
        BadInput("backfill --subject empty", (*window, "--subject", ""), "subject"),
        BadInput("backfill missing --to", ("backfill", "--from", day), "--to"),
        BadInput("backfill unknown flag", (*window, "--fast"), "--fast"),
        BadInput("demo --end not a date", ("demo", "--no-ui", "--end", "soon"), "--end"),
        BadInput("subjects retire configured", ("subjects", "retire", "sim-codex"), "sim-codex"),
        BadInput("subjects retire unknown", ("subjects", "retire", "nobody"), "nobody"),
        BadInput("subjects retire nothing", ("subjects", "retire"), "subject"),
        BadInput("subjects unknown action", ("subjects", "rename"), "rename"),
        # queries
        BadInput("query bad SQL", ("query", "SELEC * FROM candles"), "SELEC"),
        BadInput("query unknown table", ("query", "SELECT * FROM candels"), "candels"),
        BadInput("query unknown column", ("query", "SELECT colour FROM candles"), "colour"),
        BadInput("query a write", ("query", "DROP TABLE candles"), "DROP"),
        BadInput("query --limit text", ("query", "SELECT 1", "--limit", "ten"), "--limit"),
        BadInput("query --format unknown", ("query", "SELECT 1", "--format", "xml"), "--format"),
        # attempts
        BadInput(
            "attempt unknown subject",
            ("attempt", "--subject", "nobody", "--task", "demo__calcexpr-001", "--out", "try"),
            "nobody",
        ),
        BadInput(
            "attempt unknown task",
            ("attempt", "--subject", "sim-codex", "--task", "no-such-task", "--out", "try"),
            "no-such-task",
        ),
        BadInput(
            "attempt --date bad",
            (
                "attempt",
                "--subject",
                "sim-codex",
                "--task",
                "demo__calcexpr-001",
                "--out",
                "try",
                "--date",
                "2026-02-30",
            ),
            "--date",
        ),
        BadInput(
            "attempt --trial text",
            (
                "attempt",
                "--subject",
                "sim-codex",
                "--task",
                "demo__calcexpr-001",
                "--out",
                "try",
                "--trial",
                "x",
            ),
            "--trial",
        ),
        BadInput(
            "attempt --config missing",
            (
                "attempt",
                "--subject",
                "sim-codex",
                "--task",
                "demo__calcexpr-001",
                "--out",
                "try",
                "--config",
                "nowhere.yaml",
            ),
            "nowhere.yaml",
        ),
        BadInput("check --config missing", ("check", "--config", "nowhere.yaml"), "nowhere.yaml"),
    ]
    # detect CSVs
    good = "subject,date,task,trial,resolved\n" + "".join(
        f"s,2026-11-{d:02d},t{t},{k},{(d + t + k) % 2}\n"
        for d in range(1, 29)
        for t in range(5)
        for k in range(2)
    )
    detect = [
        ("resolved maybe", good.replace(",1\n", ",maybe\n", 1), "resolved"),
        ("resolved 2", good.replace(",1\n", ",2\n", 1), "resolved"),
        ("resolved empty", good.replace(",1\n", ",\n", 1), "resolved"),
        ("date month 13", good.replace("2026-11-05", "2026-13-05", 1), "date"),
        ("date text", good.replace("2026-11-05", "fifth", 1), "date"),
        ("trial negative", good.replace("s,2026-11-01,t0,0", "s,2026-11-01,t0,-1", 1), "trial"),
        ("trial text", good.replace("s,2026-11-01,t0,0", "s,2026-11-01,t0,first", 1), "trial"),
        ("duplicate trial", good + good.splitlines()[1] + "\n", "trial"),
        (
            "missing column",
            good.replace("subject,date,task,trial,resolved", "subject,date,task,trial,ok"),
            "resolved",
        ),
        ("empty file", "", "counts.csv"),
        ("header only", "subject,date,task,trial,resolved\n", "counts.csv"),
        ("ragged row", good + "s,2026-11-29,t1\n", "counts.csv"),
        ("empty subject", good.replace("s,2026-11-03,t0,0", ",2026-11-03,t0,0", 1), "subject"),
    ]
    cases += [
        BadInput(f"detect CSV: {what}", ("detect", "counts.csv"), needle, "counts.csv", text)
        for what, text, needle in detect
    ]
    cases += [
        BadInput("detect missing file", ("detect", "nowhere.csv"), "nowhere.csv"),
        BadInput(
            "detect a binary file", ("detect", "counts.csv"), "counts.csv", "counts.csv", "\x00\xff\xfe" * 50
        ),
        BadInput(
            "detect --recent 0", ("detect", "counts.csv", "--recent", "0"), "--recent", "counts.csv", good
        ),
        BadInput(
            "detect --baseline -1",
            ("detect", "counts.csv", "--baseline", "-1"),
            "--baseline",
            "counts.csv",
            good,
        ),
        BadInput("detect --recent text", ("detect", "counts.csv", "--recent", "week"), "--recent"),
        BadInput(
            "detect controls ok maybe",
            ("detect", "counts.csv", "--controls", "controls.csv"),
            "ok",
            "controls.csv",
            "date,task,ok\n2026-11-01,t0,maybe\n",
            also=(("counts.csv", good),),
        ),
        BadInput(
            "detect controls missing file",
            ("detect", "counts.csv", "--controls", "nowhere.csv"),
            "nowhere.csv",
            "counts.csv",
            good,
        ),
        BadInput(
            "detect controls missing column",
            ("detect", "counts.csv", "--controls", "controls.csv"),
            "ok",
            "controls.csv",
            "date,task\n2026-11-01,t0\n",
            also=(("counts.csv", good),),
        ),
    ]
    # predictions and rows files for `candlebench grade`
    one_prediction = '{"instance_id": "x", "model_patch": "", "model_name_or_path": "m"}\n'
    grade = (
        "grade",
        "--tasks",
        "demo",
        "--predictions",
        "preds.jsonl",
        "--sandbox",
        "process",
        "--allow-untrusted-patches-without-sandbox",
        "--out",
        "graded",
    )
    preds = [
        ("not JSON", "{not json\n", "preds.jsonl"),
        ("missing instance_id", '{"model_patch": "", "model_name_or_path": "m"}\n', "instance_id"),
        (
            "unknown instance",
            '{"instance_id": "nope", "model_patch": "", "model_name_or_path": "m"}\n',
            "nope",
        ),
        (
            "patch not a string",
            '{"instance_id": "demo__calcexpr-001", "model_patch": 5, "model_name_or_path": "m"}\n',
            "model_patch",
        ),
        ("empty file", "", "preds.jsonl"),
        ("a number", "5\n", "preds.jsonl"),
        (
            "duplicate instance",
            '{"instance_id": "demo__calcexpr-001", "model_patch": "", "model_name_or_path": "m"}\n' * 2,
            "demo__calcexpr-001",
        ),
    ]
    cases += [
        BadInput(f"predictions: {what}", grade, needle, "preds.jsonl", text) for what, text, needle in preds
    ]
    cases += [
        BadInput("grade predictions missing", grade, "preds.jsonl"),
        BadInput(
            "grade --tasks missing rows file",
            (
                "grade",
                "--tasks",
                "rows.jsonl",
                "--predictions",
                "preds.jsonl",
                "--sandbox",
                "process",
                "--allow-untrusted-patches-without-sandbox",
                "--out",
                "graded",
            ),
            "rows.jsonl",
        ),
        BadInput(
            "grade --workers 0",
            (*grade, "--workers", "0"),
            "--workers",
            "preds.jsonl",
            '{"instance_id": "demo__calcexpr-001", "model_patch": "", "model_name_or_path": "m"}\n',
        ),
        BadInput(
            "grade --timeout -1",
            (*grade, "--timeout", "-1"),
            "--timeout",
            "preds.jsonl",
            '{"instance_id": "demo__calcexpr-001", "model_patch": "", "model_name_or_path": "m"}\n',
        ),
    ]
    rows_grade = (
        "grade",
        "--tasks",
        "rows.jsonl",
        "--predictions",
        "preds.jsonl",
        "--sandbox",
        "process",
        "--allow-untrusted-patches-without-sandbox",
        "--out",
        "graded",
    )
    rows = [
        ("not JSON", "{oops\n", "rows.jsonl"),
        ("missing columns", '{"instance_id": "x", "repo": "r"}\n', "rows.jsonl"),
        ("list column not a list", json.dumps({c: "x" for c in PRO_FIELDS}) + "\n", "fail_to_pass"),
        ("empty file", "", "rows.jsonl"),
    ]
    cases += [
        BadInput(
            f"rows file: {what}",
            rows_grade,
            needle,
            "rows.jsonl",
            text,
            also=(("preds.jsonl", one_prediction),),
        )
        for what, text, needle in rows
    ]
    cases += [
        BadInput(f"tracking.yaml suite rows file: {what}", window, needle, "rows.jsonl", text)
        for what, text, needle in rows[:2]
    ]
    return cases


def bad_input(setup: Setup, case: BadInput) -> Result:
    result = Result(case.name, "bad input")
    home = fresh_copy(setup.built, setup.scratch, "bad")
    extra: dict[str, str] = {}
    try:
        if case.file:
            target = home / case.file
            if case.edit:
                old, new = case.edit
                text = target.read_text()
                if old not in text:
                    result.outcome, result.note = "not reached", f"{old!r} not in {case.file}"
                    return result
                target.write_text(text.replace(old, new, 1))
            else:
                target.write_text(case.content or "", errors="surrogateescape")
            if case.name.startswith("tracking.yaml suite rows file"):
                config = home / "tracking.yaml"
                config.write_text(config.read_text().replace("suite: demo", f"suite: {target}", 1))
        for name, text in case.also:
            (home / name).write_text(text)
        if case.name == "CANDLEBENCH_CONFIG missing file":
            extra["CANDLEBENCH_CONFIG"] = str(home / "missing-tracking.yaml")
        status, _, err = candlebench(home, list(case.args), timeout=300, **extra)
        lines = [line for line in err.strip().splitlines() if line.strip()]
        if status is None:
            result.outcome, result.note = "hang", "not finished"
        elif "Traceback" in err:
            result.outcome, result.note = "unclear", "traceback: " + (lines[-1] if lines else "")[:200]
        elif status == 0:
            result.outcome, result.note = "unclear", "accepted: exit 0"
        elif not lines or case.needle.lower() not in lines[-1].lower():
            result.outcome = "unclear"
            result.note = (
                f"exit {status}, error does not name {case.needle!r}: " + (lines[-1] if lines else "")[:200]
            )
        else:
            result.note = lines[-1][:160]
        bad, where = rows_lost_or_wrong(setup.reference, dump(home))
        if bad:
            result.outcome, result.lost, result.note = "lost", bad, where
        return result
    finally:
        clean_up(home)


# --- the plan -------------------------------------------------------------------------------------

KILL_POINTS_FULL = [
    ("attempt", (1, 5, 9, 17, 30)),
    ("lake_rename.samples", (1,)),
    ("lake_rename.controls", (1, 2)),
    ("lake_rename.tasks", (1,)),
    ("lake_rename.attempts", (1, 2, 4)),
    ("lake_rename.evaluations", (1, 2, 4)),
    ("graded", (1, 3)),
    ("candles_transaction", (1,)),
    ("candles_written", (1,)),
    ("changepoints_tables", (1, 3)),
    ("snapshot_publish", (1, 2)),
]
KILL_POINTS_QUICK = [("attempt", (3,)), ("lake_rename.evaluations", (1,))]
READER_POINTS = ("candles_transaction", "changepoints_tables", "lake_rename.evaluations", "snapshot_publish")


def plan(setup: Setup, quick: bool) -> list[tuple[str, callable]]:
    jobs = []
    for point, hits in KILL_POINTS_QUICK if quick else KILL_POINTS_FULL:
        jobs += [(f"kill {point} {n}", lambda p=point, n=n: kill_at(setup, p, n)) for n in hits]
    jobs += [(f"grading {n}", lambda n=n: kill_mid_grading(setup, n)) for n in (() if quick else (1, 6, 12))]
    jobs += [
        (f"grading cli {n}", lambda n=n: kill_mid_grading(setup, n, group=False))
        for n in ((2,) if quick else (2, 12))
    ]
    jobs += [
        (f"reader {p}", lambda p=p: reader_beside_writer(setup, p))
        for p in (READER_POINTS[:1] if quick else READER_POINTS)
    ]
    if not quick:
        jobs.append(("race", lambda: racing_backfills(setup)))
    disks = ((64, True),) if quick else ((64, True), (900, True), (2048, True), (64, False), (900, False))
    jobs += [(f"disk {kb} {r}", lambda kb=kb, r=r: full_disk(setup, kb, r)) for kb, r in disks]
    cases = bad_inputs(setup)
    if quick:
        wanted = (
            "tracking.yaml: subject name sim[1]",
            "tracking.yaml: trials 0",
            "scenario.yaml: failure weights",
            "backfill --from not a date",
            "backfill --subject unknown",
            "query bad SQL",
            "detect CSV: resolved maybe",
            "detect CSV: date month 13",
            "predictions: not JSON",
            "predictions: unknown instance",
            "tracking.yaml: not YAML",
        )
        cases = [c for c in cases if c.name.startswith(wanted)]
    jobs += [(f"input: {case.name}", lambda c=case: bad_input(setup, c)) for case in cases]
    return jobs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a subset (~20 faults) for CI")
    parser.add_argument("--jobs", type=int, default=2, help="faults run at once")
    parser.add_argument("--days", type=int, default=None, help="days in the reference history")
    parser.add_argument("--only", action="append", help="only faults whose name holds this (repeatable)")
    parser.add_argument(
        "--part",
        choices=("all", "inputs", "faults"),
        default="all",
        help="only the bad-input table, only the other faults, or both (default)",
    )
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    out = args.out or str(Path(__file__).parent / "results" / f"faults{'-quick' if args.quick else ''}.json")
    days = args.days or (1 if args.quick else 2)
    began = time.monotonic()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that tmpfs mounts are undone
    with tempfile.TemporaryDirectory(prefix="cb-faults-") as scratch:
        end = dt.datetime.now(dt.UTC).date()
        setup = Setup(Path(scratch), end - dt.timedelta(days=days - 1), end)
        build_reference(setup)
        reference_s = time.monotonic() - began
        print(
            f"reference: {days} days x 2 subjects in {reference_s:.0f} s, "
            f"{sum(sum(t.values()) for t in setup.reference.values())} rows in {len(setup.reference)} tables"
        )
        jobs = [
            (name, job)
            for name, job in plan(setup, args.quick)
            if (not args.only or any(part in name for part in args.only))
            and (args.part == "all" or (args.part == "inputs") == name.startswith("input: "))
        ]
        results: list[Result] = []
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            futures = {}
            for name, job in jobs:
                futures[pool.submit(timed, job, name)] = name
            for future in concurrent.futures.as_completed(futures):
                result = future.result()
                results.append(result)
                print(
                    f"  {result.outcome:<12} {result.kind:<12} {result.name}  {result.note[:110]}", flush=True
                )
    results = [r for r in results if r.outcome != "not reached"] + [
        r for r in results if r.outcome == "not reached"
    ]
    injected = [r for r in results if r.outcome != "not reached"]
    counts = {
        "faults_injected": len(injected),
        "survived": sum(r.outcome == "survived" for r in injected),
        "rows_lost_or_wrong": sum(r.lost for r in injected),
        "hangs": sum(r.outcome == "hang" for r in injected),
        "unclear_errors": sum(r.outcome == "unclear" for r in injected),
        "failed_recoveries": sum(r.outcome == "lost" and not r.lost for r in injected),
        "not_reached": len(results) - len(injected),
    }
    print()
    print(f"{'kind':<14}{'faults':>8}{'survived':>10}{'rows lost/wrong':>17}{'hangs':>7}{'unclear':>9}")
    for kind in dict.fromkeys(r.kind for r in injected):
        group = [r for r in injected if r.kind == kind]
        print(
            f"{kind:<14}{len(group):>8}{sum(r.outcome == 'survived' for r in group):>10}"
            f"{sum(r.lost for r in group):>17}{sum(r.outcome == 'hang' for r in group):>7}"
            f"{sum(r.outcome == 'unclear' for r in group):>9}"
        )
    for r in results:
        if r.outcome != "survived":
            print(f"  {r.outcome}: {r.name}: {r.note}")
    write_result(
        out,
        {
            **counts,
            "quick": args.quick,
            "days": days,
            "seconds": round(time.monotonic() - began),
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "faults": [r.__dict__ for r in results],
        },
    )
    print(f"wrote {out}")
    print(
        f"faults injected {counts['faults_injected']}, survived {counts['survived']}, rows lost or wrong "
        f"{counts['rows_lost_or_wrong']}, hangs {counts['hangs']}, unclear errors {counts['unclear_errors']}"
    )
    return 0 if counts["survived"] == counts["faults_injected"] else 1


def timed(job, name: str) -> Result:
    began = time.monotonic()
    try:
        result = job()
    except Exception as err:  # the suite's own failure is a fault not survived, never a crash
        result = Result(name, "suite", "unclear", note=f"suite error: {err!r}"[:300])
    result.seconds = round(time.monotonic() - began, 1)
    return result


if __name__ == "__main__":
    sys.exit(main())
