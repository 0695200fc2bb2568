"""What a grading can come to, and the rule that turns one run's facts into an outcome.

Resolution follows SWE-bench and SWE-Bench-Pro: resolved when every FAIL_TO_PASS and every
PASS_TO_PASS test passed. Only the harness's failures and attempts never launched leave the
denominator; everything a patch can cause counts against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

PASSING = frozenset({"PASSED", "XFAIL"})
FAILING = frozenset({"FAILED", "ERROR"})


class Outcome(StrEnum):
    RESOLVED = "resolved"
    UNRESOLVED = "unresolved"
    EMPTY_PATCH = "empty_patch"
    PATCH_FAILED = "patch_failed"  # no apply rule took the patch
    TIMEOUT = "timeout"
    HARNESS_ERROR = "harness_error"  # the grader or sandbox failed: retried, never cached
    SKIPPED = "skipped"  # the attempt was never launched (cost cap, no replayed trial)

    @property
    def counted(self) -> bool:
        """The graded-trial rule: this outcome is in the pass rate's denominator."""
        return self not in (Outcome.HARNESS_ERROR, Outcome.SKIPPED)


GRADED = tuple(o for o in Outcome if o is not Outcome.SKIPPED)  # what a grading run can give
COUNTED_SQL = "outcome IN ({})".format(", ".join(f"'{o}'" for o in Outcome if o.counted))


@dataclass(frozen=True)
class RunFacts:
    """What one run of the graded tests showed, as read outside the sandbox."""

    exit_code: int | None
    output: str
    timed_out: bool
    tests: dict[str, str] = field(default_factory=dict)  # status per test id
    started: bool | None = None  # the runner's own start marker was seen (None: no marker to go by)
    truncated: bool = False
    tampered: bool = False  # the graded test files changed during the run
    oom_killed: bool = False
    problems: tuple[str, ...] = ()  # what the results channel found wrong: any one invalidates the run
    base_gives_results: bool | None = None  # the unpatched tree's run parses results (None: not asked)


@dataclass(frozen=True)
class Classification:
    outcome: Outcome
    reason: str
    f2p_passed: int
    p2p_passed: int


def classify(
    f2p: list[str], p2p: list[str], facts: RunFacts, timeout_s: float, output_cap: int
) -> Classification:
    """The outcome of one run of a task's graded tests (FAIL_TO_PASS `f2p`, PASS_TO_PASS `p2p`)."""
    passed = {name for name, status in facts.tests.items() if status in PASSING}
    failing = [name for name, status in facts.tests.items() if status in FAILING]
    counts = dict(f2p_passed=sum(n in passed for n in f2p), p2p_passed=sum(n in passed for n in p2p))

    def verdict(outcome: Outcome, reason: str = "") -> Classification:
        return Classification(outcome, reason, **counts)

    if facts.timed_out:
        return Classification(Outcome.TIMEOUT, f"killed after {timeout_s:.0f}s", 0, 0)
    if facts.started is False:
        return verdict(
            Outcome.HARNESS_ERROR,
            f"the test runner never started (exit {facts.exit_code}): {facts.output.strip()[-300:]}",
        )
    if facts.truncated:
        return verdict(Outcome.UNRESOLVED, f"output passed the {output_cap}-byte cap: the run was stopped")
    if facts.tampered:
        return verdict(Outcome.UNRESOLVED, "the graded test files changed during the run: invalid run")
    if facts.problems and facts.tests:
        return verdict(Outcome.UNRESOLVED, f"invalid run: {'; '.join(facts.problems)[:500]}")
    if not facts.tests:
        oom = " (killed: out of memory)" if facts.oom_killed else ""
        why = f"no test results in the output (exit {facts.exit_code}){oom}" + "".join(
            f"; {p}" for p in facts.problems
        )
        # 126/127 without a start marker to go by: the test runner itself is missing
        missing = facts.started is None and facts.exit_code in (126, 127)
        tail = facts.output.strip()[-300:]
        if missing:
            return verdict(Outcome.HARNESS_ERROR, f"{why}: the test runner could not start: {tail}")
        if facts.base_gives_results is False:
            return verdict(
                Outcome.HARNESS_ERROR,
                f"{why}; the unpatched tree gives none either: the harness failed, not the patch: {tail}",
            )
        if facts.base_gives_results:
            why += "; the unpatched tree gives results, so the patch stopped them"
        return verdict(Outcome.UNRESOLVED, why)
    if facts.exit_code != 0 and not failing:
        return verdict(Outcome.UNRESOLVED, "exit status says failure but no test failed: invalid run")
    resolved = counts["f2p_passed"] == len(f2p) and counts["p2p_passed"] == len(p2p)
    return verdict(Outcome.RESOLVED if resolved else Outcome.UNRESOLVED)
