"""Grade a patch: clean checkout, apply, restore graded tests, run them in a sandbox, classify.

Resolution follows SWE-bench and SWE-Bench-Pro: resolved when every FAIL_TO_PASS and every
PASS_TO_PASS test passed. Results are parsed here, outside the sandbox, from lines the patch
cannot forge cheaply (see PYTEST_RUNNER). Every grading leaves its patch, script, raw output and
verdict in one folder, which doubles as the grade cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shlex
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from pipeline.sandbox import Limits, RunResult, Sandbox, SandboxUnavailable
from pipeline.tasks import Task

GRADER_VERSION = "2"
OUTCOMES = ("resolved", "unresolved", "empty_patch", "patch_failed", "timeout", "harness_error")
PASSING = {"PASSED", "XFAIL"}
FAILING = {"FAILED", "ERROR"}
_RESULT_LINE = re.compile(r"^(PASSED|FAILED|ERROR|XFAIL|XPASS)\s+(.+?)(?:\s+-\s+.*)?$")
MARK = "@@candlebench"
# Host-side git never runs hooks or an fsmonitor a work tree's config might name, and reads no
# system or user config (the work tree may be owned by the sandbox's uid: any owner is accepted).
_SAFE_GIT = ("-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "-c", "safe.directory=*")
_GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "LC_ALL": "C"}

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


def is_empty(patch: str) -> bool:
    return patch.strip() == ""


def run_git(workdir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """git in a work tree whose config we do not trust: no hooks, no fsmonitor, any owner."""
    return subprocess.run(
        ["git", *_SAFE_GIT, *args], cwd=workdir, input=stdin, text=True, capture_output=True,
        check=False, env={"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"), **_GIT_ENV},
    )


def strip_binary_hunks(patch: str) -> str:
    """Drop per-file sections that carry binary data: they cannot be applied as text."""
    sections = re.split(r"(?m)^(?=diff --git )", patch)
    kept = [s for s in sections if "GIT binary patch" not in s and "Binary files " not in s]
    return "".join(kept)


_PATH_LINE = re.compile(r"(?m)^(?:diff --git |--- |\+\+\+ |rename from |rename to |copy from |copy to )(.*)$")


def unsafe_paths(patch: str) -> list[str]:
    """Paths a patch names that leave the work tree or touch its .git: never applied on the host."""
    bad = []
    for match in _PATH_LINE.finditer(patch):
        for word in match.group(1).split("\t")[0].split():
            word = word.strip('"')
            if word in ("/dev/null", "a/", "b/") or not word:
                continue
            stripped = word[2:] if word[:2] in ("a/", "b/") else word  # what -p1 leaves
            parts = word.split("/")
            if (word.startswith("/") or stripped.startswith("/") or ".." in parts
                    or any(p.lower() == ".git" for p in parts)):
                bad.append(word)
    return sorted(set(bad))


def apply_patch(workdir: Path, patch: str) -> str:
    """Apply with git apply, then a three-way apply, then patch --fuzz; return the step or ''."""
    patch = strip_binary_hunks(patch)
    if unsafe_paths(patch):
        return ""
    if not patch.endswith("\n"):
        patch += "\n"
    steps = [
        ("git_apply", lambda: run_git(workdir, "apply", "--verbose", "--whitespace=nowarn", stdin=patch)),
        ("git_apply_3way", lambda: run_git(workdir, "apply", "--verbose", "--3way", "--whitespace=nowarn",
                                           stdin=patch)),
        ("patch_fuzz", lambda: subprocess.run(
            ["patch", "--batch", "--fuzz=5", "-p1", "--no-backup-if-mismatch"], cwd=workdir,
            input=patch, text=True, capture_output=True, check=False)),
    ]
    for step, apply in steps:
        if apply().returncode == 0:
            return step
        run_git(workdir, "reset", "-q", "--hard")
        run_git(workdir, "clean", "-qfd")
    return ""


def restore_command(task: Task) -> list[str]:
    """The last line of before_repo_set_cmd, the one SWE-Bench-Pro's harness runs after the patch."""
    lines = [line for line in task.before_repo_set_cmd.strip().splitlines() if line.strip()]
    if not lines:
        return []
    last = shlex.split(lines[-1])
    if last[:2] != ["git", "checkout"]:
        raise ValueError(f"{task.instance_id}: unexpected restore command {lines[-1]!r}")
    return last


def graded_paths(task: Task) -> list[str]:
    """The test files the restore command checks out of the fix: read-only while tests run."""
    last = restore_command(task)
    return last[last.index("--") + 1:] if "--" in last else []


def restore_tests(workdir: Path, task: Task) -> list[str]:
    """Check the graded test files out of the fix (after the patch); return their paths."""
    last = restore_command(task)
    if last:
        done = run_git(workdir, *last[1:])
        if done.returncode != 0:
            raise RuntimeError(f"restoring graded tests failed: {done.stderr.strip()}")
    return graded_paths(task)


def _digest_tree(workdir: Path, paths: list[str]) -> dict[str, str]:
    """Content hash of each graded path (not following symlinks), to notice edits during the run."""
    found = {}
    root = workdir.resolve()
    for rel in paths:
        path = workdir / rel
        if not path.resolve().is_relative_to(root):
            found[rel] = "outside"
            continue
        files = [path] if not path.is_dir() or path.is_symlink() else sorted(path.rglob("*"))
        digest = hashlib.sha256()
        for item in files:
            if item.is_symlink():
                digest.update(f"link {item} {os.readlink(item)}".encode())
            elif item.is_file():
                digest.update(f"file {item}".encode())
                with item.open("rb") as handle:
                    digest.update(hashlib.file_digest(handle, "sha256").digest())
            elif not item.exists():
                digest.update(f"missing {item}".encode())
        found[rel] = digest.hexdigest()
    return found


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

    def image(self, task: Task) -> str | None: ...

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

    def image(self, task: Task) -> str | None:
        return None

    def fingerprint(self, task: Task) -> str:
        return hashlib.sha256(PYTEST_RUNNER.encode()).hexdigest()[:12]

    def plan(self, task: Task, workspace: Path) -> TestPlan:
        nonce = secrets.token_hex(16)
        (workspace / "cb_pytest.py").write_text(PYTEST_RUNNER)
        files = " ".join(shlex.quote(f) for f in task.test_files) or "tests"
        command = ('exec python -B -s -P "$CB_WORKSPACE/cb_pytest.py" -rA -p no:cacheprovider '
                   f"-o addopts='' {files}")
        return TestPlan(command, {}, lambda run: parse_marked(run.output, nonce), f"{nonce}\n".encode())


class Grader:
    """Grades patches for a suite, with a content-addressed cache of verdicts and artifacts."""

    def __init__(
        self,
        checkout: Checkout,
        sandbox: Sandbox,
        artifacts: Path,
        limits: Limits | None = None,
        allow_untrusted_unsandboxed: bool = False,
        runner: TestRunner | None = None,
    ) -> None:
        self.checkout = checkout
        self.sandbox = sandbox
        self.artifacts = Path(artifacts)
        self.limits = limits or Limits()
        self.runner = runner or PytestRunner()
        self.fingerprint = sandbox.fingerprint()
        self.allow_untrusted_unsandboxed = allow_untrusted_unsandboxed

    def folder(self, key: str) -> Path:
        return self.artifacts / key[:2] / key

    def cached(self, key: str) -> Verdict | None:
        path = self.folder(key) / "verdict.json"
        if not path.exists():
            return None
        verdict = Verdict(**json.loads(path.read_text()))
        if verdict.outcome == "harness_error":
            return None  # the harness's failures are never reused: a re-grade must retry them
        verdict.cached = True
        return verdict

    def environment(self, task: Task) -> str:
        """Fingerprint of the environment the task's tests run in (image id or host toolchain)."""
        image = self.runner.image(task)
        return self.fingerprint if image is None else self.sandbox.fingerprint(image)

    def grade(
        self, task: Task, patch: str, trusted: bool = True, run_empty: bool = False,
        use_cache: bool = True,
    ) -> Verdict:
        """Grade one patch. `run_empty` runs the tests even for an empty patch (harness control)."""
        if self.sandbox.trusted_only and not trusted and not self.allow_untrusted_unsandboxed:
            raise PermissionError(
                f"{task.instance_id}: refusing to run an untrusted patch in the "
                f"{self.sandbox.name!r} sandbox; use docker or bubblewrap, or set "
                "allow_untrusted_patches_without_sandbox: true if you accept the risk"
            )
        graded = patch if (run_empty or not is_empty(patch)) else ""
        try:
            environment = self.environment(task)
        except SandboxUnavailable as err:  # e.g. the task's image is missing: say which and how
            key = grade_key(task, graded, "unavailable")
            verdict = self._verdict(task, key, "harness_error", reason=str(err))
            self._store(key, patch, task, verdict, "")
            return verdict
        key = grade_key(task, graded, f"{environment}|{self.runner.fingerprint(task)}")
        if run_empty:
            key = hashlib.sha256((key + "|run_empty").encode()).hexdigest()
        if use_cache and (hit := self.cached(key)):
            return hit
        verdict, script = self._grade_fresh(task, patch, key, run_empty, environment)
        self._store(key, patch, task, verdict, script)
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

    def not_run(self, task: Task, outcome: str, reason: str) -> Verdict:
        """The verdict of an attempt that never reached a sandbox (e.g. `skipped`): nothing stored."""
        return self._verdict(task, "", outcome, reason=reason, artifact_dir="")

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

    def _script(self, task: Task, step: str, command: str, environment: str) -> str:
        image = self.runner.image(task) or getattr(self.sandbox, "image", "") or "host"
        restore = " ".join(restore_command(task)) or "# (no graded test files to restore)"
        return "\n".join([
            f"# candlebench grader {GRADER_VERSION}: sandbox {self.sandbox.name}, image {image} "
            f"({environment}), runner {self.runner.name}",
            "# on the host: a clean work tree at the base commit",
            f"git clone <{task.repo}> app && git -C app checkout {task.base_commit}",
            f"# on the host: the apply chain (binary hunks stripped); this patch: {step or 'none'}",
            "git apply --verbose patch.diff || git apply --verbose --3way patch.diff || "
            "patch --batch --fuzz=5 -p1 < patch.diff",
            "# on the host: restore the graded test files (the last line of before_repo_set_cmd)",
            restore,
            f"# in the sandbox: /app = app, read-only: {', '.join(graded_paths(task)) or 'nothing'}; "
            f"limits {self.limits}",
            command,
        ]) + "\n"

    def _grade_fresh(
        self, task: Task, patch: str, key: str, run_empty: bool, environment: str
    ) -> tuple[Verdict, str]:
        started = time.monotonic()
        fail = dict(env_fingerprint=environment)
        if is_empty(patch) and not run_empty:
            return self._verdict(task, key, "empty_patch", reason="the patch is empty", **fail), ""
        folder = self.folder(key)
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="cb-grade-") as scratch:
            workdir, workspace = Path(scratch) / "app", Path(scratch) / "workspace"
            workspace.mkdir()
            try:
                self.checkout(task, workdir)
            except Exception as err:  # any checkout failure is the harness's, not the agent's
                return self._verdict(task, key, "harness_error", reason=f"checkout: {err}", **fail), ""
            if not is_empty(patch) and (bad := unsafe_paths(strip_binary_hunks(patch))):
                reason = f"the patch names paths outside the work tree or in .git: {bad[:3]}"
                return self._verdict(task, key, "patch_failed", reason=reason, **fail), ""
            step = "none" if is_empty(patch) else apply_patch(workdir, patch)
            if not step:
                return self._verdict(
                    task, key, "patch_failed", reason="no step of the apply chain took the patch",
                    duration_s=time.monotonic() - started, **fail,
                ), ""
            try:
                graded = restore_tests(workdir, task)
            except ValueError as err:  # the task's restore command itself is malformed
                return self._verdict(task, key, "harness_error", apply_step=step, reason=str(err),
                                     **fail), ""
            except RuntimeError as err:  # the patch's doing only if a clean tree restores fine
                by_patch = step != "none" and self._restores_cleanly(task, Path(scratch) / "clean")
                return self._verdict(task, key, "unresolved" if by_patch else "harness_error",
                                     apply_step=step, reason=str(err), **fail), ""
            try:
                before = _digest_tree(workdir, graded)
                plan = self.runner.plan(task, workspace)
            except Exception as err:
                return self._verdict(task, key, "harness_error", apply_step=step, reason=str(err),
                                     **fail), ""
            script = self._script(task, step, plan.command, environment)
            try:
                run = self.sandbox.run(workdir, plan.command, self.limits, image=self.runner.image(task),
                                       workspace=workspace, readonly=graded, env=plan.env,
                                       stdin=plan.stdin)
            except Exception as err:  # the sandbox failed to run at all: never the patch's fault
                return self._verdict(task, key, "harness_error", apply_step=step,
                                     reason=f"sandbox {self.sandbox.name}: {err}", **fail), script
            tampered = before != _digest_tree(workdir, graded)
            try:
                runner_started, tests = plan.parse(run)
                parse_error = ""
            except Exception as err:  # a parser choking on the output: as if there were none
                runner_started, tests, parse_error = None, {}, f"; parser failed: {err}"
        (folder / "output.log").write_text(run.output)
        if run.stderr:
            (folder / "stdout.log").write_text(run.stdout)
            (folder / "stderr.log").write_text(run.stderr)
        verdict = self.classify(
            task, key, step, run.exit_code, run.output, run.timed_out, time.monotonic() - started,
            tests=tests, started=runner_started, truncated=run.truncated, tampered=tampered,
            oom_killed=run.oom_killed, env_fingerprint=environment,
        )
        verdict.reason += parse_error
        return verdict, script

    def _restores_cleanly(self, task: Task, workdir: Path) -> bool:
        try:
            self.checkout(task, workdir)
            restore_tests(workdir, task)
        except Exception:
            return False
        return True

    def classify(
        self, task: Task, key: str, step: str, exit_code: int | None, output: str,
        timed_out: bool, duration_s: float, *, tests: dict[str, str] | None = None,
        started: bool | None = None, truncated: bool = False, tampered: bool = False,
        oom_killed: bool = False, env_fingerprint: str | None = None,
    ) -> Verdict:
        """Outcome of one run. `tests` None means: read pytest's -rA summary from `output`."""
        env = dict(env_fingerprint=env_fingerprint or self.fingerprint)
        if timed_out:
            return self._verdict(task, key, "timeout", apply_step=step, duration_s=duration_s,
                                 reason=f"killed after {self.limits.timeout_s:.0f}s", **env)
        if tests is None:
            tests = parse_pytest(output)
        passed = {name for name, status in tests.items() if status in PASSING}
        failing = [name for name, status in tests.items() if status in FAILING]
        f2p = sum(name in passed for name in task.f2p)
        p2p = sum(name in passed for name in task.p2p)
        common = dict(apply_step=step, f2p_passed=f2p, p2p_passed=p2p, exit_code=exit_code,
                      duration_s=duration_s, tests=tests, **env)
        if started is False:
            return self._verdict(task, key, "harness_error", **common,
                                 reason=f"the test runner never started (exit {exit_code}): "
                                        f"{output.strip()[-300:]}")
        if truncated:
            return self._verdict(task, key, "unresolved", **common,
                                 reason=f"output passed the {self.limits.output_bytes}-byte cap: "
                                        "the run was stopped")
        if tampered:
            return self._verdict(task, key, "unresolved", **common,
                                 reason="the graded test files changed during the run: invalid run")
        if not tests:
            # 126/127 without a start marker to go by: the test runner itself is missing
            missing = started is None and exit_code in (126, 127)
            oom = " (killed: out of memory)" if oom_killed else ""
            return self._verdict(task, key, "harness_error" if missing else "unresolved", **common,
                                 reason=f"no test results in the output (exit {exit_code}){oom}")
        if exit_code != 0 and not failing:
            return self._verdict(task, key, "unresolved", **common,
                                 reason="exit status says failure but no test failed: invalid run")
        resolved = f2p == len(task.f2p) and p2p == len(task.p2p)
        return self._verdict(task, key, "resolved" if resolved else "unresolved", **common)

    def _store(self, key: str, patch: str, task: Task, verdict: Verdict, script: str) -> None:
        folder = self.folder(key)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "patch.diff").write_text(patch)
        if script:
            (folder / "eval.sh").write_text(script)
        tmp = folder / f"verdict.json.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        tmp.write_text(json.dumps(asdict(verdict), indent=1, sort_keys=True))
        tmp.replace(folder / "verdict.json")
