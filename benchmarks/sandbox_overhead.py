"""What each sandbox costs per evaluation, and what two parallel evaluations buy.

    python benchmarks/sandbox_overhead.py [--runs 20] [--evaluations 16] [--rounds 5]
        [--backends process,bubblewrap,docker] [--out benchmarks/results/sandbox_overhead.json]

Overhead: a demo task's graded tests (gold patch applied, graded files restored) run directly on
the host (`python cb_pytest.py ...` in the work tree) and through each sandbox with the same
command, interleaved run by run; the overhead is the median of the paired differences. For
docker that difference also holds the image's own Python and pytest (a different toolchain from
the host's), so the fixed cost of the mechanism alone is measured too: `true` through the
sandbox against `bash -c true` directly, also paired.
Throughput: `--evaluations` full gradings (checkout, apply, restore, run, classify; no cache)
of distinct demo tasks, one at a time and two at a time, alternating for `--rounds` rounds; the
ratio of the median wall times, with the lowest and highest round's ratio beside it.
Fixed-cost scaling: the mechanism alone (`true` through the sandbox) one at a time and two at a
time; it bounds what two parallel evaluations can gain. The load average is recorded: on a shared
machine it matters.
Backends that cannot run here are reported as such. Goals: docker <= 0.5 s, bubblewrap <= 50 ms
median overhead; two parallel evaluations >= 1.7x the throughput of one.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from record import result_path, write_result  # benchmarks/record.py (its folder is on sys.path)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.grading import Grader
from pipeline.grading.patches import apply_patch, graded_paths, restore_tests
from pipeline.grading.runners import PytestRunner
from pipeline.sandbox import Limits, SandboxUnavailable, open_sandbox  # noqa: E402
from pipeline.tasks.demo import DemoSuite

TASK = "demo__textkit-001"
GOALS = {"docker": 0.5, "bubblewrap": 0.05}


def _prepared(suite: DemoSuite, scratch: Path):
    task = next(t for t in suite.tasks() if t.instance_id == TASK)
    workdir, workspace = scratch / "app", scratch / "workspace"
    workspace.mkdir()
    suite.checkout(task, workdir)
    apply_patch(workdir, task.patch)
    restore_tests(workdir, task)
    return task, workdir, workspace


def _direct(task, workdir: Path, workspace: Path) -> float:
    plan = PytestRunner().plan(task, workspace)
    args = plan.command.removeprefix("exec ").replace('"$CB_WORKSPACE', f'"{workspace}')
    started = time.perf_counter()
    done = subprocess.run(
        ["bash", "-c", f"exec {args.replace('python', sys.executable, 1)}"],
        cwd=workdir,
        input=plan.stdin,
        capture_output=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    assert done.returncode == 0, done.stdout[-2000:]
    return elapsed


def fixed_cost(sandbox, scratch: Path, runs: int) -> float:
    diffs = []
    for _ in range(runs + 1):
        started = time.perf_counter()
        subprocess.run(["bash", "-c", "true"], check=True)
        base = time.perf_counter() - started
        started = time.perf_counter()
        result = sandbox.run(scratch, "true", Limits(timeout_s=60))
        diffs.append(time.perf_counter() - started - base)
        assert result.exit_code == 0, result.output
    return statistics.median(diffs[1:])


def overhead(sandbox, task, workdir: Path, workspace: Path, runs: int) -> dict:
    limits = Limits(timeout_s=120)
    graded = graded_paths(task)
    pairs = []
    for _ in range(runs + 1):  # the first pair warms caches and is dropped
        base = _direct(task, workdir, workspace)
        plan = PytestRunner().plan(task, workspace)
        started = time.perf_counter()
        result = sandbox.run(
            workdir, plan.command, limits, workspace=workspace, readonly=graded, stdin=plan.stdin
        )
        boxed = time.perf_counter() - started
        assert result.exit_code == 0, result.output[-2000:]
        pairs.append((base, boxed))
    pairs = pairs[1:]
    diffs = [boxed - base for base, boxed in pairs]
    return {
        "direct_median_s": statistics.median(b for b, _ in pairs),
        "sandbox_median_s": statistics.median(s for _, s in pairs),
        "overhead_median_s": statistics.median(diffs),
        "overhead_p90_s": sorted(diffs)[int(0.9 * (len(diffs) - 1))],
        "runs": len(pairs),
    }


def throughput(sandbox, suite: DemoSuite, scratch: Path, evaluations: int, rounds: int) -> dict:
    tasks = sorted(suite.tasks(), key=lambda t: t.instance_id)[:evaluations]
    pairs = [(t, t.patch) for t in tasks]
    grader = Grader(
        suite.checkout,
        sandbox,
        scratch / "artifacts",
        Limits(timeout_s=120),
        allow_untrusted_unsandboxed=True,
    )
    times: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(rounds):
        for workers in (1, 2):
            started = time.perf_counter()
            verdicts = grader.grade_many(pairs, workers=workers, use_cache=False)
            times[workers].append(time.perf_counter() - started)
            assert all(v.outcome == "resolved" for v in verdicts), [
                (v.instance_id, v.reason) for v in verdicts
            ]
    one, two = statistics.median(times[1]), statistics.median(times[2])
    per_round = [a / b for a, b in zip(times[1], times[2], strict=True)]
    return {
        "evaluations": len(pairs),
        "rounds": rounds,
        "one_at_a_time_s": one,
        "two_at_a_time_s": two,
        "speedup": one / two,
        "speedup_lowest_round": min(per_round),
        "speedup_highest_round": max(per_round),
    }


def fixed_cost_scaling(sandbox, scratch: Path, runs: int, rounds: int) -> float:
    """Throughput of the bare mechanism (`true`), two at a time over one at a time (median round)."""

    def batch(workers: int) -> float:
        started = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            results = list(
                pool.map(lambda _: sandbox.run(scratch, "true", Limits(timeout_s=60)), range(runs))
            )
        assert all(r.exit_code == 0 for r in results), [r.output for r in results]
        return time.perf_counter() - started

    return statistics.median(batch(1) / batch(2) for _ in range(rounds))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--evaluations", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backends", default="process,bubblewrap,docker")
    parser.add_argument(
        "--quick", action="store_true", help="process backend only: 3 runs, 2 evaluations, 1 round"
    )
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    args.out = result_path("sandbox_overhead", args.quick, args.out)
    if args.quick:
        args.runs, args.evaluations, args.rounds, args.backends = 3, 2, 1, "process"
    results = {
        "machine": {
            "cpus": os.cpu_count(),
            "kernel": platform.release(),
            "python": platform.python_version(),
            "root": os.geteuid() == 0,
            "load_average_before": os.getloadavg(),
        },
        "task": TASK,
        "backends": {},
    }
    with tempfile.TemporaryDirectory(prefix="cb-bench-") as scratch:
        scratch = Path(scratch)
        suite = DemoSuite(scratch / "repos")
        task, workdir, workspace = _prepared(suite, scratch)
        for name in args.backends.split(","):
            try:
                sandbox = open_sandbox(name)
            except SandboxUnavailable as err:
                results["backends"][name] = {"unavailable": str(err)}
                print(f"{name}: unavailable ({err})")
                continue
            print(f"{name}: {args.runs} paired runs ...", flush=True)
            row = overhead(sandbox, task, workdir, workspace, args.runs)
            (scratch / "empty").mkdir(exist_ok=True)
            row["fixed_cost_median_s"] = fixed_cost(sandbox, scratch / "empty", args.runs)
            row["fixed_cost_speedup"] = fixed_cost_scaling(sandbox, scratch / "empty", args.runs, args.rounds)
            print(
                f"{name}: {args.evaluations} evaluations, 1 and 2 at a time, {args.rounds} rounds ...",
                flush=True,
            )
            row.update(throughput(sandbox, suite, scratch / name, args.evaluations, args.rounds))
            results["backends"][name] = row
    results["machine"]["load_average_after"] = os.getloadavg()
    print()
    print(
        f"{'backend':<11} {'direct':>8} {'sandbox':>8} {'overhead':>9} {'p90':>7} {'fixed':>7} {'goal':>6}"
        f" {'1 at a time':>12} {'2 at a time':>12} {'speedup':>8} {'rounds':>11} {'fixed only':>10}"
    )
    for name, row in results["backends"].items():
        if "unavailable" in row:
            print(f"{name:<11} unavailable: {row['unavailable'][:80]}")
            continue
        goal = f"{GOALS[name]:.2f}" if name in GOALS else "-"
        print(
            f"{name:<11} {row['direct_median_s']:>7.3f}s {row['sandbox_median_s']:>7.3f}s "
            f"{row['overhead_median_s']:>8.3f}s {row['overhead_p90_s']:>6.3f}s "
            f"{row['fixed_cost_median_s']:>6.3f}s {goal:>6} "
            f"{row['one_at_a_time_s']:>11.2f}s {row['two_at_a_time_s']:>11.2f}s {row['speedup']:>7.2f}x "
            f"{row['speedup_lowest_round']:>5.2f}-{row['speedup_highest_round']:.2f} "
            f"{row['fixed_cost_speedup']:>9.2f}x"
        )
    write_result(args.out, results)
    print(
        f"load average before {results['machine']['load_average_before']}, after "
        f"{results['machine']['load_average_after']} on {os.cpu_count()} CPUs"
    )
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
