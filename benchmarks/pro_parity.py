"""Pro's own harness and candlebench's grader on the real SWE-Bench-Pro instance, in the same run.

    python benchmarks/pro_parity.py [--repeats 3] [--quick] [--out benchmarks/results/pro_parity.json]

The instance is ../shared/fixtures/swe-bench-pro (its image built by `candlebench build-pro-image`).
Per patch class (gold; empty, graded as a control, i.e. its tests run; wrong:
tests/pro_patches/wrong_winrm.diff), both harnesses grade the same patch on the same image, one
after the other, alternating which goes first, for `--repeats` rounds after one untimed warm-up
of each (candlebench's first evaluation exports /app once per image). Recorded per evaluation:
wall time, resolution, and the per-test statuses; Pro's harness is tests/pro_reference.py (its
entry-script steps), candlebench's is `grade_with_candlebench`, the one function to re-point when
the grader moves. Parity holds when, for every class, every round agrees on the resolution and
on every test's status (a candlebench harness_error agrees with nothing), and candlebench's
median time is at most 1.2x Pro's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from record import UNAVAILABLE, result_path, write_result  # benchmarks/record.py (its folder is on sys.path)

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from pro_reference import run_pro_harness  # noqa: E402  tests/pro_reference.py: Pro's entry script

from pipeline.tasks.model import Task  # noqa: E402
from pipeline.tasks.pro import pro_image  # noqa: E402
from pipeline.tasks.rows import load_rows  # noqa: E402

FIXTURE = ROOT.parent / "shared" / "fixtures" / "swe-bench-pro"
WRONG_PATCH = ROOT / "tests" / "pro_patches" / "wrong_winrm.diff"
TIME_RATIO_GOAL = 1.2


@dataclass
class Graded:
    """One harness's conclusion about one patch."""

    harness: str
    patch_class: str
    resolved: bool
    outcome: str  # candlebench's outcome; for Pro: resolved / unresolved / no output.json
    statuses: dict[str, str]
    seconds: float
    reason: str = ""


def grade_with_candlebench(rows: Path, home: Path) -> Callable[[Task, str, bool], Graded]:
    """candlebench's grader as `candlebench grade` builds it: the only place this file calls it."""
    from pipeline.grading import Grader
    from pipeline.sandbox import Limits
    from pipeline.sandbox.docker import DockerSandbox
    from pipeline.tasks.pro import RowSuite

    suite = RowSuite(rows, home)
    sandbox = DockerSandbox()
    suite.bind(sandbox, suite.tasks())
    grader = Grader(
        suite.checkout,
        sandbox,
        home / "artifacts",
        Limits(timeout_s=1800),
        runner=suite.runner,
        image_of=suite.image,
        apply_rule=suite.apply_rule,
        release=suite.release,
    )

    def grade(task: Task, patch: str, control: bool) -> Graded:
        started = time.monotonic()
        verdict = grader.grade(task, patch, trusted=False, run_empty=control, use_cache=False)
        return Graded(
            "candlebench",
            "",
            verdict.resolved,
            verdict.outcome,
            dict(verdict.tests),
            time.monotonic() - started,
            verdict.reason[:300],
        )

    return grade


def grade_with_pro(task: Task, patch: str) -> Graded:
    """Pro's harness: its entry script's steps in a fresh container of the task image."""
    result = run_pro_harness(pro_image(task), task.as_row(), FIXTURE / "run_scripts", patch, timeout_s=1800)
    outcome = ("resolved" if result.resolved else "unresolved") if result.output_found else "no output.json"
    return Graded("pro", "", result.resolved, outcome, dict(result.statuses), result.seconds)


@dataclass
class ClassSummary:
    """Both harnesses on one patch class, over all rounds."""

    patch_class: str
    pro_s: list[float] = field(default_factory=list)
    candlebench_s: list[float] = field(default_factory=list)
    resolution_agrees: list[bool] = field(default_factory=list)
    statuses_agree: list[bool] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)  # "pro outcome / candlebench outcome"

    def ratio(self) -> float:
        return statistics.median(self.candlebench_s) / statistics.median(self.pro_s)

    def holds(self) -> bool:
        return all(self.resolution_agrees) and all(self.statuses_agree) and self.ratio() <= TIME_RATIO_GOAL


def disagreements(pro: dict[str, str], ours: dict[str, str]) -> list[str]:
    """Tests whose status differs (or that only one harness reports), at most a few."""
    names = sorted(set(pro) | set(ours))
    return [
        f"{n}: pro {pro.get(n, '-')}, candlebench {ours.get(n, '-')}"
        for n in names
        if pro.get(n) != ours.get(n)
    ][:5]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one round, no warm-up")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    args.out = result_path("pro_parity", args.quick, args.out)
    rows = FIXTURE / "rows.jsonl"
    if not rows.is_file():
        print(f"no SWE-Bench-Pro fixture at {FIXTURE}", file=sys.stderr)
        return UNAVAILABLE
    task = load_rows(rows)[0]
    patches = {"gold": task.patch, "empty": "", "wrong": WRONG_PATCH.read_text()}
    repeats = 1 if args.quick else args.repeats
    evaluations: list[Graded] = []
    with tempfile.TemporaryDirectory(prefix="cb-parity-") as home:
        try:
            candlebench = grade_with_candlebench(rows, Path(home))
        except Exception as err:  # no Docker, no image: say so, as the tests do
            print(f"candlebench's grader cannot run here: {err}", file=sys.stderr)
            return UNAVAILABLE
        if not args.quick:
            print("warm-up (untimed): both harnesses on the gold patch", flush=True)
            grade_with_pro(task, task.patch)
            candlebench(task, task.patch, False)
        for round_number in range(repeats):
            for index, (name, patch) in enumerate(patches.items()):
                sides = [
                    lambda p=patch: grade_with_pro(task, p),
                    lambda p=patch, n=name: candlebench(task, p, n == "empty"),
                ]
                if (round_number + index) % 2:
                    sides.reverse()
                for side in sides:
                    graded = side()
                    graded.patch_class = name
                    evaluations.append(graded)
                    print(
                        f"round {round_number + 1} {name:5} {graded.harness:11} {graded.outcome:14} "
                        f"{graded.seconds:6.1f}s {graded.reason[:80]}",
                        flush=True,
                    )
    summaries = summarise(evaluations, list(patches))
    print_table(summaries)
    holds = all(s.holds() for s in summaries)
    print(
        f"parity {'holds' if holds else 'does not hold'} (same resolution and statuses every round, "
        f"time ratio <= {TIME_RATIO_GOAL})"
    )
    path = write_result(
        args.out,
        {
            "instance": task.instance_id,
            "image": pro_image(task),
            "repeats": repeats,
            "quick": args.quick,
            "load": os.getloadavg(),
            "parity": holds,
            "classes": [asdict(s) | {"ratio": round(s.ratio(), 3), "holds": s.holds()} for s in summaries],
            "evaluations": [asdict(e) for e in evaluations],
            "disagreements": {
                s.patch_class: d for s in summaries if (d := first_disagreement(evaluations, s))
            },
        },
    )
    print(f"wrote {path}")
    return 0


def summarise(evaluations: list[Graded], classes: list[str]) -> list[ClassSummary]:
    summaries = []
    for name in classes:
        summary = ClassSummary(name)
        pro = [e for e in evaluations if e.patch_class == name and e.harness == "pro"]
        ours = [e for e in evaluations if e.patch_class == name and e.harness == "candlebench"]
        for a, b in zip(pro, ours, strict=True):
            summary.pro_s.append(round(a.seconds, 2))
            summary.candlebench_s.append(round(b.seconds, 2))
            graded = b.outcome in ("resolved", "unresolved")  # a harness_error agrees with nothing
            summary.resolution_agrees.append(graded and a.resolved == b.resolved)
            summary.statuses_agree.append(a.statuses == b.statuses)
            summary.outcomes.append(f"{a.outcome} / {b.outcome}")
        summaries.append(summary)
    return summaries


def first_disagreement(evaluations: list[Graded], summary: ClassSummary) -> list[str]:
    pro = next(e for e in evaluations if e.patch_class == summary.patch_class and e.harness == "pro")
    ours = next(e for e in evaluations if e.patch_class == summary.patch_class and e.harness == "candlebench")
    return disagreements(pro.statuses, ours.statuses)


def print_table(summaries: list[ClassSummary]) -> None:
    print(
        f"\n{'class':6} {'Pro s (median)':>14} {'candlebench s':>14} {'ratio':>6} {'resolution':>11} "
        f"{'statuses':>9}  outcomes (pro / candlebench)"
    )
    for s in summaries:
        agree = f"{sum(s.resolution_agrees)}/{len(s.resolution_agrees)}"
        same = f"{sum(s.statuses_agree)}/{len(s.statuses_agree)}"
        pro, ours = statistics.median(s.pro_s), statistics.median(s.candlebench_s)
        print(
            f"{s.patch_class:6} {pro:14.1f} {ours:14.1f} {s.ratio():6.2f} {agree:>11} {same:>9}  "
            f"{'; '.join(sorted(set(s.outcomes)))}"
        )


if __name__ == "__main__":
    raise SystemExit(main())
