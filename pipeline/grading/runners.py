"""Test runners: how a task's graded tests run in the sandbox and how their output is read
outside it. A task source owns its runner (the demo suite: pytest through our entry script;
SWE-Bench-Pro rows: their own run_script.sh and parser.py, in tasks/pro.py)."""

from __future__ import annotations

import hashlib
import re
import secrets
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

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
        status, _, node = line[len(prefix):].partition(" ")
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


class TestRunner(Protocol):
    """How a task's graded tests run in the sandbox and how their output is read outside it."""

    name: str

    def fingerprint(self, task: Task) -> str: ...

    def plan(self, task: Task, workspace: Path) -> TestPlan: ...

PYTEST_RUNNER = r'''"""candlebench's pytest entry point in the sandbox: it runs before any code of the patch.

It reads the run's nonce from stdin (so it is in no file, argument or environment a test could
read), imports pytest before the work tree is importable, and at the end of the session prints
one line per test marked with the nonce. The grader reads only those lines.
"""
import os
import sys


def emit(lines):
    data = ("\n" + "\n".join(lines) + "\n").encode()
    while data:
        data = data[os.write(OUT, data):]


NONCE = sys.stdin.buffer.readline().decode().strip()
OUT = os.dup(1)  # the real stdout, whatever capturing or the tests later do to fd 1
emit([f"@@candlebench {NONCE} start"])
import pytest  # noqa: E402  imported before the work tree is on sys.path: it cannot be shadowed

sys.path.insert(0, os.getcwd())  # as `python -m pytest` does


class Results:
    def __init__(self):
        self.status = {}

    def pytest_runtest_logreport(self, report):
        xfail = hasattr(report, "wasxfail")
        if report.when == "call":
            if report.passed:
                status = "XPASS" if xfail else "PASSED"
            elif report.failed:
                status = "FAILED"
            else:
                status = "XFAIL" if xfail else "SKIPPED"
        elif report.failed:
            status = "ERROR"
        elif report.skipped:
            status = "XFAIL" if xfail else "SKIPPED"
        else:
            return
        if self.status.get(report.nodeid) not in ("FAILED", "ERROR"):
            self.status[report.nodeid] = status

    def pytest_sessionfinish(self, session, exitstatus):
        lines = [f"@@candlebench {NONCE} {s} {n.replace(chr(10), ' ')}" for n, s in self.status.items()]
        emit(lines + [f"@@candlebench {NONCE} end {len(self.status)} {int(exitstatus)}"])


sys.exit(pytest.main(sys.argv[1:], plugins=[Results()]))
'''


class PytestRunner:
    """Runs the task's selected test files with pytest through PYTEST_RUNNER (the demo suite's way)."""

    name = "pytest"

    def fingerprint(self, task: Task) -> str:
        return hashlib.sha256(PYTEST_RUNNER.encode()).hexdigest()[:12]

    def plan(self, task: Task, workspace: Path) -> TestPlan:
        nonce = secrets.token_hex(16)
        (workspace / "cb_pytest.py").write_text(PYTEST_RUNNER)
        files = " ".join(shlex.quote(f) for f in task.test_files) or "tests"
        command = ('exec python -B -s -P "$CB_WORKSPACE/cb_pytest.py" -rA -p no:cacheprovider '
                   f"-o addopts='' {files}")
        return TestPlan(command, {}, lambda run: parse_marked(run.output, nonce), f"{nonce}\n".encode())
