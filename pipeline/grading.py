"""Grade a patch: clean checkout, apply, restore graded tests, run them in a sandbox, classify.

Resolution follows SWE-bench and SWE-Bench-Pro: resolved when every FAIL_TO_PASS and every
PASS_TO_PASS test passed. Results are parsed here, outside the sandbox. Every grading leaves
its patch, script, raw output and verdict in one folder, which doubles as the grade cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pipeline.sandbox import Limits, Sandbox
from pipeline.tasks import Task

GRADER_VERSION = "1"
OUTCOMES = ("resolved", "unresolved", "empty_patch", "patch_failed", "timeout", "harness_error")
PASSING = {"PASSED", "XFAIL"}
_RESULT_LINE = re.compile(r"^(PASSED|FAILED|ERROR|XFAIL|XPASS)\s+(.+?)(?:\s+-\s+.*)?$")

Checkout = Callable[[Task, Path], None]


@dataclass
class Verdict:
    instance_id: str
    outcome: str
    resolved: bool
    apply_step: str  # which step of the apply chain took the patch ("" when none did)
    f2p_passed: int
    f2p_total: int
    p2p_passed: int
    p2p_total: int
    exit_code: int | None
    duration_s: float
    reason: str
    grade_key: str
    grader_version: str
    env_fingerprint: str
    artifact_dir: str
    cached: bool = False
    tests: dict[str, str] = field(default_factory=dict)


def grade_key(task: Task, patch: str, fingerprint: str) -> str:
    text = "\0".join(
        [task.instance_id, task.base_commit, hashlib.sha256(patch.encode()).hexdigest(),
         fingerprint, GRADER_VERSION]
    )
    return hashlib.sha256(text.encode()).hexdigest()


def parse_pytest(output: str) -> dict[str, str]:
    """Status per test node id from pytest's `-rA` summary; a test seen failing stays failed."""
    statuses: dict[str, str] = {}
    for line in output.splitlines():
        match = _RESULT_LINE.match(line.strip())
        if not match:
            continue
        status, node = match.groups()
        if statuses.get(node) in {"FAILED", "ERROR"}:
            continue
        statuses[node] = status
    return statuses


def is_empty(patch: str) -> bool:
    return patch.strip() == ""


def test_command(task: Task) -> str:
    files = " ".join(task.test_files) or "tests"
    return f"python -m pytest -rA -p no:cacheprovider -o addopts='' {files}"


def _git(workdir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["git", *args], cwd=workdir, input=stdin, text=True, capture_output=True, check=False
    )


def strip_binary_hunks(patch: str) -> str:
    """Drop per-file sections that carry binary data: they cannot be applied as text."""
    sections = re.split(r"(?m)^(?=diff --git )", patch)
    kept = [s for s in sections if "GIT binary patch" not in s and "Binary files " not in s]
    return "".join(kept)


def apply_patch(workdir: Path, patch: str) -> str:
    """Apply with git apply, then a three-way apply, then patch --fuzz; return the step or ''."""
    patch = strip_binary_hunks(patch)
    if not patch.endswith("\n"):
        patch += "\n"
    steps = [
        ("git_apply", ["git", "apply", "--verbose", "--whitespace=nowarn"]),
        ("git_apply_3way", ["git", "apply", "--verbose", "--3way", "--whitespace=nowarn"]),
        ("patch_fuzz", ["patch", "--batch", "--fuzz=5", "-p1", "--no-backup-if-mismatch"]),
    ]
    for step, command in steps:
        done = subprocess.run(
            command, cwd=workdir, input=patch, text=True, capture_output=True, check=False
        )
        if done.returncode == 0:
            return step
        _git(workdir, "reset", "-q", "--hard")
        _git(workdir, "clean", "-qfd")
    return ""


def restore_tests(workdir: Path, task: Task) -> None:
    """Run the last line of before_repo_set_cmd: check the graded test files out of the fix."""
    lines = [line for line in task.before_repo_set_cmd.strip().splitlines() if line.strip()]
    if not lines:
        return
    last = lines[-1].split()
    if last[:2] != ["git", "checkout"]:
        raise ValueError(f"{task.instance_id}: unexpected restore command {lines[-1]!r}")
    done = _git(workdir, *last[1:])
    if done.returncode != 0:
        raise RuntimeError(f"restoring graded tests failed: {done.stderr.strip()}")


class Grader:
    """Grades patches for a suite, with a content-addressed cache of verdicts and artifacts."""

    def __init__(
        self,
        checkout: Checkout,
        sandbox: Sandbox,
        artifacts: Path,
        limits: Limits | None = None,
        allow_untrusted_unsandboxed: bool = False,
    ) -> None:
        self.checkout = checkout
        self.sandbox = sandbox
        self.artifacts = Path(artifacts)
        self.limits = limits or Limits()
        self.fingerprint = sandbox.fingerprint()
        self.allow_untrusted_unsandboxed = allow_untrusted_unsandboxed

    def folder(self, key: str) -> Path:
        return self.artifacts / key[:2] / key

    def cached(self, key: str) -> Verdict | None:
        path = self.folder(key) / "verdict.json"
        if not path.exists():
            return None
        verdict = Verdict(**json.loads(path.read_text()))
        verdict.cached = True
        return verdict

    def grade(
        self, task: Task, patch: str, trusted: bool = True, run_empty: bool = False,
        use_cache: bool = True,
    ) -> Verdict:
        """Grade one patch. `run_empty` runs the tests even for an empty patch (harness control)."""
        if self.sandbox.trusted_only and not trusted and not self.allow_untrusted_unsandboxed:
            raise PermissionError(
                f"{task.instance_id}: refusing to run an untrusted patch in the "
                f"{self.sandbox.name!r} sandbox; use docker, or set "
                "allow_untrusted_patches_without_sandbox: true if you accept the risk"
            )
        key = grade_key(task, patch if (run_empty or not is_empty(patch)) else "", self.fingerprint)
        if run_empty:
            key = hashlib.sha256((key + "|run_empty").encode()).hexdigest()
        if use_cache and (hit := self.cached(key)):
            return hit
        verdict = self._grade_fresh(task, patch, key, run_empty)
        self._store(key, patch, task, verdict)
        return verdict

    def grade_many(
        self, items: Iterable[tuple[Task, str]], workers: int = 2, **options
    ) -> list[Verdict]:
        """Grade (task, patch) pairs concurrently; identical pairs are graded once."""
        items = list(items)
        unique: dict[tuple[str, str], tuple[Task, str]] = {}
        for task, patch in items:
            unique.setdefault((task.instance_id, patch), (task, patch))
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            futures = {k: pool.submit(self.grade, t, p, **options) for k, (t, p) in unique.items()}
            done = {k: f.result() for k, f in futures.items()}
        return [done[(task.instance_id, patch)] for task, patch in items]

    def _verdict(self, task: Task, key: str, outcome: str, **values) -> Verdict:
        base = dict(
            instance_id=task.instance_id, outcome=outcome, resolved=outcome == "resolved",
            apply_step="", f2p_passed=0, f2p_total=len(task.f2p), p2p_passed=0,
            p2p_total=len(task.p2p), exit_code=None, duration_s=0.0, reason="", grade_key=key,
            grader_version=GRADER_VERSION, env_fingerprint=self.fingerprint,
            artifact_dir=str(self.folder(key)),
        )
        base.update(values)
        return Verdict(**base)

    def _grade_fresh(self, task: Task, patch: str, key: str, run_empty: bool) -> Verdict:
        started = time.monotonic()
        if is_empty(patch) and not run_empty:
            return self._verdict(task, key, "empty_patch", reason="the patch is empty")
        with tempfile.TemporaryDirectory(prefix="cb-grade-") as scratch:
            workdir = Path(scratch) / "app"
            try:
                self.checkout(task, workdir)
            except Exception as err:  # any checkout failure is the harness's, not the agent's
                return self._verdict(task, key, "harness_error", reason=f"checkout: {err}")
            step = "none" if is_empty(patch) else apply_patch(workdir, patch)
            if not step:
                return self._verdict(
                    task, key, "patch_failed", reason="no step of the apply chain took the patch",
                    duration_s=time.monotonic() - started,
                )
            try:
                restore_tests(workdir, task)
            except Exception as err:
                return self._verdict(task, key, "harness_error", apply_step=step, reason=str(err))
            run = self.sandbox.run(workdir, test_command(task), self.limits)
        (self.folder(key)).mkdir(parents=True, exist_ok=True)
        (self.folder(key) / "output.log").write_text(run.output)
        return self.classify(task, key, step, run.exit_code, run.output, run.timed_out,
                             time.monotonic() - started)

    def classify(
        self, task: Task, key: str, step: str, exit_code: int | None, output: str,
        timed_out: bool, duration_s: float,
    ) -> Verdict:
        if timed_out:
            return self._verdict(task, key, "timeout", apply_step=step, duration_s=duration_s,
                                 reason=f"killed after {self.limits.timeout_s:.0f}s")
        tests = parse_pytest(output)
        passed = {name for name, status in tests.items() if status in PASSING}
        failing = [name for name, status in tests.items() if status in {"FAILED", "ERROR"}]
        f2p = sum(name in passed for name in task.f2p)
        p2p = sum(name in passed for name in task.p2p)
        common = dict(apply_step=step, f2p_passed=f2p, p2p_passed=p2p, exit_code=exit_code,
                      duration_s=duration_s, tests=tests)
        if not tests:
            # 126/127: the test runner itself is missing from the environment, the harness's fault
            outcome = "harness_error" if exit_code in (126, 127) else "unresolved"
            return self._verdict(task, key, outcome, **common,
                                 reason=f"no test results in the output (exit {exit_code})")
        if exit_code != 0 and not failing:
            return self._verdict(task, key, "unresolved", **common,
                                 reason="exit status says failure but no test failed: invalid run")
        resolved = f2p == len(task.f2p) and p2p == len(task.p2p)
        return self._verdict(task, key, "resolved" if resolved else "unresolved", **common)

    def _store(self, key: str, patch: str, task: Task, verdict: Verdict) -> None:
        folder = self.folder(key)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "patch.diff").write_text(patch)
        script = "\n".join([
            f"# candlebench grader {GRADER_VERSION}, sandbox {self.sandbox.name}",
            f"git clone <{task.repo}> /app && git checkout {task.base_commit}",
            "git apply --verbose patch.diff  # then --3way, then patch --batch --fuzz=5 -p1",
            task.before_repo_set_cmd.strip().splitlines()[-1] if task.before_repo_set_cmd else "",
            test_command(task),
        ])
        (folder / "eval.sh").write_text(script + "\n")
        tmp = folder / f"verdict.json.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(asdict(verdict), indent=1, sort_keys=True))
        tmp.replace(folder / "verdict.json")

