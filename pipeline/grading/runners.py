"""Test runners: how a task's graded tests run in the sandbox and how their output is read
outside it. A task source owns its runner (the demo suite: pytest behind the results channel;
SWE-Bench-Pro rows: their own run_script.sh and parser.py, in tasks/pro.py)."""

from __future__ import annotations

import hashlib
import re
import secrets
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from pipeline.grading.channel import CHILD, SUPERVISOR, parse_supervised, write_runner
from pipeline.grading.channel import command as supervised_command
from pipeline.grading.outcomes import FAILING
from pipeline.sandbox import RunResult
from pipeline.tasks.model import Task

_RESULT_LINE = re.compile(r"^(PASSED|FAILED|ERROR|XFAIL|XPASS)\s+(.+?)(?:\s+-\s+.*)?$")

MARK = "@@candlebench"


def parse_pytest(output: str) -> dict[str, str]:
    """Status per test node id from pytest's `-rA` summary; a test seen failing stays failed."""
    statuses: dict[str, str] = {}
    for line in output.splitlines():
        match = _RESULT_LINE.match(line.strip())
        if not match:
            continue
        status, node = match.groups()
        if statuses.get(node) in FAILING:
            continue
        statuses[node] = status
    return statuses


def parse_marked(output: str, nonce: str) -> tuple[bool, dict[str, str]]:
    """(runner started, statuses) from the lines PYTEST_RUNNER marks with this run's nonce.

    Statuses count only when exactly one end line closes exactly as many results as it says:
    anything else (no end, two ends, extra or missing lines) yields no results at all.
    """
    prefix = f"{MARK} {nonce} "
    started, ends, statuses = False, [], {}
    for line in output.splitlines():
        if not line.startswith(prefix):
            continue
        status, _, node = line[len(prefix) :].partition(" ")
        if status == "start":
            started = True
        elif status == "end":
            ends.append(node.split())
        elif statuses.get(node) not in FAILING:
            statuses[node] = status
    if len(ends) != 1 or not ends[0] or ends[0][0] != str(len(statuses)):
        return started, {}
    return started, statuses


@dataclass
class TestPlan:
    """One run of a task's graded tests: the command, its environment, and how to read its output."""

    command: str
    env: dict[str, str]
    parse: Callable[[RunResult], tuple[bool | None, dict[str, str]]]  # (runner started, statuses)
    stdin: bytes = b""
    problems: list[str] = field(default_factory=list)  # filled by parse: any one makes the run invalid


class TestRunner(Protocol):
    """How a task's graded tests run in the sandbox and how their output is read outside it."""

    name: str

    def fingerprint(self, task: Task) -> str: ...

    def plan(self, task: Task, workspace: Path) -> TestPlan: ...


class PytestRunner:
    """Runs the task's selected test files with pytest behind the results channel (`channel`): a
    supervisor that holds the run's nonce and a pytest child that reports over an inherited pipe."""

    name = "pytest"

    def fingerprint(self, task: Task) -> str:
        return hashlib.sha256((SUPERVISOR + CHILD).encode()).hexdigest()[:12]

    def plan(self, task: Task, workspace: Path) -> TestPlan:
        nonce = secrets.token_hex(16)
        write_runner(workspace)
        files = " ".join(shlex.quote(f) for f in task.test_files) or "tests"
        command = supervised_command(f"-rA -p no:cacheprovider -o addopts='' {files}")
        problems: list[str] = []

        def parse(run: RunResult) -> tuple[bool | None, dict[str, str]]:
            result = parse_supervised(run.output, nonce)
            problems.extend(result.problems)
            if result.infrastructure_failed:
                return False, {}
            return True, result.statuses

        return TestPlan(command, {}, parse, f"{nonce}\n".encode(), problems)
