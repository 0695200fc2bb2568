"""Grade a patch: clean checkout, apply, undo its edits to the test runner, restore graded tests,
run them in a sandbox, classify.

Results are parsed here, outside the sandbox, through the task's test runner; the outcome rule
is `outcomes.classify`; every grading leaves its artifacts in one folder that is also the cache.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from pipeline.grading.artifacts import GRADER_VERSION, ArtifactStore, Verdict, grade_key
from pipeline.grading.batch import grade_batch
from pipeline.grading.channel import write_changed
from pipeline.grading.outcomes import Outcome, RunFacts, classify
from pipeline.grading.patches import (
    APPLY_RULES,
    apply_patch,
    digest_tree,
    graded_paths,
    is_empty,
    restore_command,
    restore_tests,
    strip_binary_hunks,
    unsafe_paths,
)
from pipeline.grading.runners import PytestRunner, TestRunner
from pipeline.grading.tamper import patch_paths, restore_runner_files
from pipeline.sandbox import Limits, Sandbox, SandboxLost, SandboxUnavailable
from pipeline.tasks.model import Task

Checkout = Callable[[Task, Path], None]
ImageOf = Callable[[Task], "str | None"]
_APPLY_SHOWN = {
    "git_apply": "git apply --verbose patch.diff",
    "lenient": "git apply --verbose patch.diff || git apply --verbose --3way patch.diff || "
    "patch --batch --fuzz=5 -p1 < patch.diff",
}


class _Stop(Exception):
    """A grading that ends before its tests are classified: its outcome, why, and the script;
    `lost` when the sandbox itself went away (the grading is recorded, then the batch stops)."""

    def __init__(self, outcome: Outcome, reason: str, script: str = "", lost: SandboxLost | None = None):
        super().__init__(reason)
        self.outcome, self.reason, self.script, self.lost = outcome, reason, script, lost


class Grader:
    """Grades patches for a suite, with a content-addressed cache of verdicts and artifacts.

    `apply_rule` is how patches are applied: "git_apply" (SWE-Bench-Pro's plain `git apply`) or
    "lenient" (SWE-bench's fallback chain). `release(dest)`, when given, undoes a checkout (an
    overlay work tree) once its evaluation is over.
    """

    def __init__(
        self,
        checkout: Checkout,
        sandbox: Sandbox,
        artifacts: Path,
        limits: Limits | None = None,
        allow_untrusted_unsandboxed: bool = False,
        runner: TestRunner | None = None,
        image_of: ImageOf | None = None,
        apply_rule: str = "lenient",
        release: Callable[[Path], None] | None = None,
    ) -> None:
        if apply_rule not in APPLY_RULES:
            raise ValueError(f"apply rule {apply_rule!r}: expected one of {', '.join(APPLY_RULES)}")
        self.checkout = checkout
        self.sandbox = sandbox
        self.store = ArtifactStore(artifacts)
        self.artifacts = self.store.root
        self.limits = limits or Limits()
        self.runner = runner or PytestRunner()
        self.image_of = image_of or (lambda task: None)
        self.apply_rule = apply_rule
        self.release = release
        self.allow_untrusted_unsandboxed = allow_untrusted_unsandboxed
        self._fingerprint: str | None = None
        self._base_results: dict[str, bool] = {}
        self._guard = threading.Lock()

    @property
    def fingerprint(self) -> str:
        """The sandbox's default environment, asked on first need (Pro rows never need it)."""
        if self._fingerprint is None:
            self._fingerprint = self.sandbox.fingerprint()
        return self._fingerprint

    def folder(self, key: str) -> Path:
        return self.store.folder(key)

    def environment(self, task: Task) -> str:
        """Fingerprint of the environment the task's tests run in (image id or host toolchain)."""
        image = self.image_of(task)
        return self.fingerprint if image is None else self.sandbox.fingerprint(image)

    def grade(
        self, task: Task, patch: str, trusted: bool = True, run_empty: bool = False, use_cache: bool = True
    ) -> Verdict:
        """Grade one patch. `run_empty` runs the tests even for an empty patch (harness control)."""
        if not self.sandbox.capabilities.isolates and not trusted and not self.allow_untrusted_unsandboxed:
            raise PermissionError(
                f"{task.instance_id}: refusing to run an untrusted patch in the "
                f"{self.sandbox.name!r} sandbox; use docker or bubblewrap, or set "
                "allow_untrusted_patches_without_sandbox: true if you accept the risk"
            )
        graded = patch if (run_empty or not is_empty(patch)) else ""
        try:
            environment = self.environment(task)
        except SandboxLost:
            raise
        except SandboxUnavailable as err:  # e.g. the task's image is missing: say which and how
            key = grade_key(task, graded, "unavailable")
            verdict = self._verdict(
                task, key, Outcome.HARNESS_ERROR, reason=str(err), env_fingerprint="unavailable"
            )
            self.store.store(key, patch, verdict, "")
            return verdict
        key = grade_key(task, graded, f"{environment}|{self.runner.fingerprint(task)}|{self.apply_rule}")
        if run_empty:
            key = hashlib.sha256((key + "|run_empty").encode()).hexdigest()
        if use_cache and (hit := self.store.cached(key)):
            return hit
        verdict, script = self._grade_fresh(task, patch, key, run_empty, environment)
        self.store.store(key, patch, verdict, script)
        return verdict

    def grade_many(self, items: Iterable[tuple[Task, str]], workers: int = 2, **options) -> list[Verdict]:
        """Grade (task, patch) pairs concurrently, identical pairs once (`batch.grade_batch`)."""
        return grade_batch(self.grade, items, workers, **options)

    def not_run(self, task: Task, outcome: str, reason: str) -> Verdict:
        """The verdict of an attempt that never reached a sandbox (e.g. `skipped`): nothing stored."""
        try:
            environment = self.environment(task)
        except SandboxUnavailable:
            environment = "unavailable"
        return self._verdict(task, "", outcome, reason=reason, artifact_dir="", env_fingerprint=environment)

    def _verdict(self, task: Task, key: str, outcome: str, **values) -> Verdict:
        base = dict(
            instance_id=task.instance_id,
            outcome=str(outcome),
            resolved=outcome == Outcome.RESOLVED,
            apply_step="",
            f2p_passed=0,
            f2p_total=len(task.f2p),
            p2p_passed=0,
            p2p_total=len(task.p2p),
            exit_code=None,
            duration_s=0.0,
            reason="",
            grade_key=key,
            grader_version=GRADER_VERSION,
            artifact_dir=str(self.store.folder(key)),
            apply_rule=self.apply_rule,
            dataset_revision=task.revision,
        )
        base.update(values)
        if "env_fingerprint" not in base:
            base["env_fingerprint"] = self.fingerprint
        return Verdict(**base)

    def _script(self, task: Task, step: str, command: str, environment: str) -> str:
        image = self.image_of(task) or getattr(self.sandbox, "image", "") or "host"
        restore = " ".join(restore_command(task)) or "# (no graded test files to restore)"
        return (
            "\n".join(
                [
                    f"# candlebench grader {GRADER_VERSION}: sandbox {self.sandbox.name}, image {image} "
                    f"({environment}), runner {self.runner.name}",
                    "# on the host: a clean work tree at the base commit",
                    f"git clone <{task.repo}> app && git -C app checkout {task.base_commit}",
                    f"# on the host: apply rule {self.apply_rule} (binary hunks stripped); this patch: "
                    f"{step or 'none'}",
                    _APPLY_SHOWN[self.apply_rule],
                    "# on the host: files configuring the test runner that the patch touched, back to "
                    "the base commit's version",
                    "# on the host: restore the graded test files (the last line of before_repo_set_cmd)",
                    restore,
                    f"# in the sandbox: /app = app, read-only: {', '.join(graded_paths(task)) or 'nothing'}; "
                    f"limits {self.limits}",
                    command,
                ]
            )
            + "\n"
        )

    def _grade_fresh(
        self, task: Task, patch: str, key: str, run_empty: bool, environment: str
    ) -> tuple[Verdict, str]:
        started = time.monotonic()
        image = self.image_of(task)
        fail = dict(
            env_fingerprint=environment,
            run_scripts_revision=self.runner.fingerprint(task),
            image_digest=self.sandbox.image_digest(image) if image else "",
        )
        if is_empty(patch) and not run_empty:
            return self._verdict(task, key, Outcome.EMPTY_PATCH, reason="the patch is empty", **fail), ""
        self.store.folder(key).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f"cb-grade-{os.getpid()}-") as scratch:
            workdir = Path(scratch) / "app"
            known: dict = {}
            try:
                return self._steps(task, patch, key, environment, Path(scratch), fail, started, known)
            except _Stop as stop:
                duration = time.monotonic() - started
                verdict = self._verdict(
                    task, key, stop.outcome, reason=stop.reason, duration_s=duration, **known, **fail
                )
                if stop.lost is not None:  # recorded as the harness's failure, then the batch stops
                    self.store.store(key, patch, verdict, stop.script)
                    raise stop.lost from stop
                return verdict, stop.script
            finally:
                if self.release is not None:
                    self.release(workdir)

    # fmt: off
    def _steps(self, task: Task, patch: str, key: str, environment: str, scratch: Path, fail: dict,
               started: float, known: dict) -> tuple[Verdict, str]:
        """Check out, apply, restore, run and classify; a step that ends the grading early raises
        `_Stop`, and `known` holds what the verdict should record of the steps before it."""
        # fmt: on
        workdir, workspace = scratch / "app", scratch / "workspace"
        workspace.mkdir()
        try:
            self.checkout(task, workdir)
        except Exception as err:  # any checkout failure is the harness's, not the agent's
            raise _Stop(Outcome.HARNESS_ERROR, f"checkout: {err}") from err
        applied = strip_binary_hunks(patch)
        if not is_empty(patch) and (bad := unsafe_paths(applied)):
            raise _Stop(
                Outcome.PATCH_FAILED, f"the patch names paths outside the work tree or in .git: {bad[:3]}"
            )
        step = "none" if is_empty(patch) else apply_patch(workdir, patch, self.apply_rule)
        if not step:
            raise _Stop(Outcome.PATCH_FAILED, f"the patch does not apply ({self.apply_rule})")
        known["apply_step"] = step
        try:
            tamper = restore_runner_files(
                workdir, task.base_commit, applied, graded_tests=[*task.test_files, *graded_paths(task)]
            )
        except Exception as err:  # the base commit cannot be read: the harness's problem
            raise _Stop(Outcome.HARNESS_ERROR, f"restoring the test runner's files: {err}") from err
        undone = {*tamper.restored, *tamper.removed, *(s.split(" ")[0] for s in tamper.sections)}
        fail.update(tampered=tamper.tampered, tampered_paths=sorted(undone | set(tamper.refused)))
        write_changed(
            workspace, [p for p in patch_paths(applied) if p not in undone and p not in graded_paths(task)]
        )
        try:
            graded = restore_tests(workdir, task)
        except ValueError as err:  # the task's restore command itself is malformed
            raise _Stop(Outcome.HARNESS_ERROR, str(err)) from err
        except RuntimeError as err:  # the patch's doing only if a clean tree restores fine
            by_patch = step != "none" and self._restores_cleanly(task, scratch / "clean")
            raise _Stop(Outcome.UNRESOLVED if by_patch else Outcome.HARNESS_ERROR, str(err)) from err
        try:
            before = digest_tree(workdir, graded)
            plan = self.runner.plan(task, workspace)
        except Exception as err:
            raise _Stop(Outcome.HARNESS_ERROR, str(err)) from err
        script = self._script(task, step, plan.command, environment)
        try:
            run = self.sandbox.run(
                workdir, plan.command, self.limits, image=self.image_of(task), workspace=workspace,
                readonly=graded, env=plan.env, stdin=plan.stdin,
            )  # fmt: skip
        except Exception as err:  # the sandbox failed to run, or went away mid-run: never the patch's fault
            lost = err if isinstance(err, SandboxLost) else None
            raise _Stop(Outcome.HARNESS_ERROR, f"sandbox {self.sandbox.name}: {err}", script, lost) from err
        changed = before != digest_tree(workdir, graded)
        try:
            runner_started, tests = plan.parse(run)
            parse_error = ""
        except Exception as err:  # a parser choking on the output: as if there were none
            runner_started, tests, parse_error = None, {}, f"; parser failed: {err}"
        self.store.write_output(key, run.output, run.stdout, run.stderr)
        base_results = None
        if not tests and not run.timed_out and not run.truncated and runner_started is not False:
            base_results = False if step == "none" else self._base_gives_results(task)
        facts = RunFacts(
            run.exit_code, run.output, run.timed_out, tests, runner_started, run.truncated, changed,
            run.oom_killed, tuple(plan.problems), base_results,
        )  # fmt: skip
        found = classify(task.f2p, task.p2p, facts, self.limits.timeout_s, self.limits.output_bytes)
        timed_out = found.outcome == Outcome.TIMEOUT
        reason = "; ".join(r for r in (found.reason + parse_error, tamper.reason()) if r)
        forged = bool(plan.problems) and bool(tests)
        fail.update(tampered=tamper.tampered or changed or forged)
        verdict = self._verdict(
            task, key, found.outcome, apply_step=step, f2p_passed=found.f2p_passed,
            p2p_passed=found.p2p_passed, exit_code=None if timed_out else run.exit_code,
            duration_s=time.monotonic() - started, tests={} if timed_out else tests, reason=reason, **fail,
        )  # fmt: skip
        return verdict, script

    def _base_gives_results(self, task: Task) -> bool:
        """Whether the unpatched tree's run parses test results: the harness control (its cached
        verdict when there is one). Only a yes is remembered: a harness failure may pass."""
        with self._guard:
            if self._base_results.get(task.instance_id):
                return True
        control = self.grade(task, "", run_empty=True)
        known = control.outcome != Outcome.HARNESS_ERROR and bool(control.tests)
        with self._guard:
            self._base_results[task.instance_id] = known
        return known

    def _restores_cleanly(self, task: Task, workdir: Path) -> bool:
        try:
            self.checkout(task, workdir)
            restore_tests(workdir, task)
        except Exception:
            return False
        finally:
            if self.release is not None:
                self.release(workdir)
        return True
