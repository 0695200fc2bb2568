"""Faults and bad inputs injected as a user's machine meets them, every table compared row by row.

    python benchmarks/faults.py [--quick] [--jobs 2] [--out benchmarks/results/faults.json]

A clean seeded reference run (a short demo history, two simulated subjects, the process sandbox)
is built through `candlebench backfill` in a temporary home and its tables dumped: the lake
(samples, controls, attempts, evaluations, tasks) and every warehouse table, keeping the columns
that are facts (run ids, timestamps, durations, paths and cache flags dropped; fault_homes.py).
Then each fault runs in a fresh copy of the setup:

- kill -9 at a named point (pipeline/faults.py, `CANDLEBENCH_FAULT=kill:<point>@<n>`): inside an
  attempt, between a lake partition's temporary write and its rename, after grading, inside the
  candles transaction, between changepoint tables, while the read snapshot is published; or from
  outside, when the n-th grading artifact appears (mid-grading); then the same `candlebench
  backfill` is run again, as a user would, and every table compared with the reference;
- readers beside a writer paused inside its transaction (`pause:<point>`): `candlebench query`
  must answer while the writer holds the warehouse; two backfills racing on one home;
- a full disk: the home on a small tmpfs: the error must say disk full, stored rows must survive;
- a Docker daemon that dies mid-evaluation: a private dockerd of the suite's own, killed -9 while
  a sandbox container of ours runs (fault_docker.py), never the shared daemon;
- bad inputs for every file and flag a user hands over (fault_inputs.py): exit status != 0, a last
  stderr line naming the input, no traceback, no stored row lost.

Outcomes: survived, rows lost or wrong (rows of the reference missing or changed, or extra),
hang (not finished within the bound), unclear error (a traceback, exit 0 on bad input, or an
error that does not name the input).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from fault_docker import DockerFaults, daemon_dies
from fault_homes import (
    BOUND_S,
    CANDLEBENCH,
    Result,
    Setup,
    build_reference,
    candlebench,
    clean_up,
    dump,
    environment,
    fresh_copy,
    has_traceback,
    recover_and_compare,
    rows_lost_or_wrong,
    wait_for,
)
from fault_inputs import QUICK, bad_input, bad_inputs
from record import write_result  # benchmarks/record.py (its folder is on sys.path)


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
            if status != 0 or has_traceback(err):
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
    elif any(has_traceback(err) for _, _, err in runs):
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
        if has_traceback(err) or status == 0 or "disk full" not in said:
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


DOCKER_FULL = (("patch evaluations", False), ("harness controls", False), ("patch evaluations", True))
DOCKER_QUICK = (("patch evaluations", False),)


def plan(setup: Setup, quick: bool, docker: DockerFaults) -> list[tuple[str, callable]]:
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
        cases = [c for c in cases if c.name.startswith(QUICK)]
    jobs += [(f"input: {case.name}", lambda c=case: bad_input(setup, c)) for case in cases]
    # One daemon fault at a time (they share the private daemon): spread through the plan, so that
    # a second never holds a worker waiting for the first.
    daemon = [
        (f"docker {during} {containerd}", lambda d=during, c=containerd: daemon_dies(docker, d, c))
        for during, containerd in (DOCKER_QUICK if quick else DOCKER_FULL)
    ]
    step = max(len(jobs) // len(daemon), 1)
    for index, job in enumerate(daemon):
        jobs.insert(index * (step + 1), job)
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
    began, started = time.monotonic(), dt.datetime.now(dt.UTC)
    load = LoadSampler()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that mounts and the private daemon go
    with tempfile.TemporaryDirectory(prefix="cb-faults-") as scratch:
        end = started.date()
        setup = Setup(Path(scratch), end - dt.timedelta(days=days - 1), end)
        build_reference(setup)
        reference_s = time.monotonic() - began
        print(
            f"reference: {days} days x 2 subjects in {reference_s:.0f} s, "
            f"{sum(sum(t.values()) for t in setup.reference.values())} rows in {len(setup.reference)} tables"
        )
        docker = DockerFaults(setup)
        jobs = [
            (name, job)
            for name, job in plan(setup, args.quick, docker)
            if (not args.only or any(part in name for part in args.only))
            and (args.part == "all" or (args.part == "inputs") == name.startswith("input: "))
        ]
        results: list[Result] = []
        try:
            with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
                futures = {}
                for name, job in jobs:
                    futures[pool.submit(timed, job, name)] = name
                for future in concurrent.futures.as_completed(futures):
                    result = future.result()
                    results.append(result)
                    print(
                        f"  {result.outcome:<12} {result.kind:<12} {result.name}  {result.note[:110]}",
                        flush=True,
                    )
        finally:
            docker.close()
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
            "started": started.isoformat(timespec="seconds"),
            "seconds": round(time.monotonic() - began),
            "load": load.summary(),
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "faults": [r.__dict__ for r in results],
        },
    )
    print(f"wrote {out} (load {load.summary()['mean_1min']} mean, {load.summary()['max_1min']} max)")
    print(
        f"faults injected {counts['faults_injected']}, survived {counts['survived']}, rows lost or wrong "
        f"{counts['rows_lost_or_wrong']}, hangs {counts['hangs']}, unclear errors {counts['unclear_errors']}"
    )
    return 0 if counts["survived"] == counts["faults_injected"] else 1


class LoadSampler:
    """The machine's 1-minute load average, sampled every 30 s while the suite runs."""

    def __init__(self) -> None:
        self.samples = [os.getloadavg()[0]]
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while True:
            time.sleep(30)
            self.samples.append(os.getloadavg()[0])

    def summary(self) -> dict[str, float]:
        mean = sum(self.samples) / len(self.samples)
        return {"mean_1min": round(mean, 2), "max_1min": round(max(self.samples), 2)}


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
