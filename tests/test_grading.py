"""Grading rules: parsing, the apply chain, invalid runs, skipped tests, timeouts, trust, cache,
unsafe patch paths, nonce-marked results, harness errors and tampering."""

import difflib

import pytest

from pipeline.grading import Grader
from pipeline.grading.artifacts import grade_key
from pipeline.grading.outcomes import RunFacts, classify
from pipeline.grading.patches import apply_patch, strip_binary_hunks, unsafe_paths
from pipeline.grading.runners import PytestRunner, parse_marked, parse_pytest
from pipeline.sandbox import Limits
from pipeline.sandbox.process import ProcessSandbox
from pipeline.tasks import Task
from pipeline.tasks.demo import SUITE_DIR


def task_of(suite, instance_id="demo__textkit-001"):
    return next(t for t in suite.tasks() if t.instance_id == instance_id)


def test_parse_pytest_summary_lines():
    output = "\n".join(
        [
            "PASSED tests/test_a.py::test_one",
            "FAILED tests/test_a.py::test_two - AssertionError: boom",
            "ERROR tests/test_a.py::test_three",
            "XFAIL tests/test_a.py::test_four - reason",
            "PASSED tests/test_a.py::test_p[a b]",
            "PASSED tests/test_a.py::test_two",  # a later PASSED cannot clear a failure
            "SKIPPED [1] tests/test_a.py:9: not today",
        ]
    )
    assert parse_pytest(output) == {
        "tests/test_a.py::test_one": "PASSED",
        "tests/test_a.py::test_two": "FAILED",
        "tests/test_a.py::test_three": "ERROR",
        "tests/test_a.py::test_four": "XFAIL",
        "tests/test_a.py::test_p[a b]": "PASSED",
    }


def classified(task, exit_code, output, tests=None, started=None, tampered=False, base_gives_results=None):
    """The outcome rule on one run's facts (pytest's -rA summary read from `output` by default)."""
    facts = RunFacts(
        exit_code,
        output,
        False,
        parse_pytest(output) if tests is None else tests,
        started,
        tampered=tampered,
        base_gives_results=base_gives_results,
    )
    return classify(task.f2p, task.p2p, facts, 120, 8 << 20)


def test_fake_passed_lines_with_failing_exit_do_not_resolve(suite, tmp_path):
    task = task_of(suite)
    fake = "\n".join(f"PASSED {name}" for name in task.f2p + task.p2p)
    verdict = classified(task, 1, fake)
    assert verdict.outcome == "unresolved" and "invalid" in verdict.reason


def test_skipped_fail_to_pass_is_a_failure(suite, tmp_path):
    task = task_of(suite)
    output = "\n".join([f"PASSED {n}" for n in task.p2p] + ["SKIPPED [1] tests/x.py:1: skip"])
    verdict = classified(task, 0, output)
    assert verdict.outcome == "unresolved" and verdict.f2p_passed == 0


def test_patch_editing_graded_tests_is_undone(suite, grader):
    """A patch that rewrites the graded test file cannot pass: the file is restored first."""
    task = task_of(suite)
    test_file = task.f2p[0].split("::")[0]
    cheat = (
        f"diff --git a/{test_file} b/{test_file}\nnew file mode 100644\n--- /dev/null\n"
        f"+++ b/{test_file}\n@@ -0,0 +1,2 @@\n+def test_nothing():\n+    pass\n"
    )
    verdict = grader.grade(task, cheat)
    assert verdict.outcome == "unresolved"
    assert verdict.f2p_passed == 0


def test_apply_chain_falls_back_to_fuzz(suite, tmp_path):
    task = task_of(suite)
    suite.checkout(task, tmp_path / "app")
    # A stale first context line and no blob ids: git apply and --3way refuse, fuzz applies it.
    lines, edited = [], False
    for line in task.patch.splitlines(keepends=True):
        if line.startswith("index "):
            continue
        if not edited and line.startswith(" ") and line.strip():
            line, edited = line.rstrip("\n") + "  # drifted\n", True
        lines.append(line)
    assert edited
    assert apply_patch(tmp_path / "app", "".join(lines)) == "patch_fuzz"


def test_binary_hunks_are_stripped():
    patch = (
        "diff --git a/img.png b/img.png\nGIT binary patch\nliteral 3\nabc\n\n"
        "diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a\n+b\n"
    )
    assert strip_binary_hunks(patch).startswith("diff --git a/x.py")


def test_unapplicable_patch_is_patch_failed(suite, grader):
    task = task_of(suite)
    verdict = grader.grade(
        task, "diff --git a/nope.py b/nope.py\n--- a/nope.py\n+++ b/nope.py\n@@ -1 +1 @@\n-x\n+y\n"
    )
    assert verdict.outcome == "patch_failed" and verdict.apply_step == ""


def test_timeout_is_classified_and_killed(suite, tmp_path):
    task = task_of(suite)
    grader = Grader(suite.checkout, ProcessSandbox(), tmp_path, Limits(timeout_s=2))
    slug = (SUITE_DIR / "projects/textkit/textkit/slug.py").read_text().splitlines(keepends=True)
    sleepy = "diff --git a/textkit/slug.py b/textkit/slug.py\n" + "".join(
        difflib.unified_diff(
            slug, [*slug, "import time\n", "time.sleep(30)\n"], "a/textkit/slug.py", "b/textkit/slug.py"
        )
    )
    verdict = grader.grade(task, sleepy)
    assert verdict.outcome == "timeout"
    assert verdict.duration_s < 10


def test_untrusted_patch_is_refused_without_a_sandbox(suite, tmp_path):
    task = task_of(suite)
    grader = Grader(suite.checkout, ProcessSandbox(), tmp_path)
    with pytest.raises(PermissionError, match="untrusted"):
        grader.grade(task, task.patch, trusted=False)


def test_identical_patch_is_graded_once(suite, tmp_path):
    task = task_of(suite)
    grader = Grader(suite.checkout, ProcessSandbox(), tmp_path)
    first = grader.grade(task, task.patch)
    second = grader.grade(task, task.patch)
    assert not first.cached and second.cached
    assert second.outcome == first.outcome == "resolved"
    folder = tmp_path / first.grade_key[:2] / first.grade_key
    assert {p.name for p in folder.iterdir()} >= {"patch.diff", "eval.sh", "output.log", "verdict.json"}


def test_patches_touching_git_or_leaving_the_tree_are_refused(suite, grader, tmp_path):
    task = task_of(suite)
    for path in (".git/config", "../outside.py", "/etc/passwd", "sub/.git/hooks/pre-commit"):
        patch = (
            f"diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n+++ b/{path}\n"
            "@@ -0,0 +1 @@\n+[core]\n"
        )
        assert unsafe_paths(patch), path
        verdict = grader.grade(task, patch)
        assert verdict.outcome == "patch_failed" and "outside the work tree" in verdict.reason, path
    assert unsafe_paths(task.patch) == []


def test_only_lines_with_the_runs_nonce_count():
    nonce = "ab" * 16
    good = (
        f"@@candlebench {nonce} start\n@@candlebench {nonce} PASSED t::a\n"
        f"@@candlebench {nonce} FAILED t::b\n@@candlebench {nonce} end 2 1\n"
    )
    forged = f"PASSED t::b\n@@candlebench {'0' * 32} PASSED t::b\n"
    assert parse_marked(forged + good, nonce) == (True, {"t::a": "PASSED", "t::b": "FAILED"})
    assert parse_marked(good + f"@@candlebench {nonce} end 2 0\n", nonce) == (True, {})  # two ends
    assert parse_marked(good.replace("end 2", "end 3"), nonce) == (True, {})  # count mismatch
    assert parse_marked(forged, nonce) == (False, {})


def test_harness_errors_come_only_from_the_harness(suite, tmp_path):
    task = task_of(suite)
    never = classified(task, 127, "bash: python: not found", tests={}, started=False)
    assert never.outcome == "harness_error"
    # once the runner has started, an exit status the patch chose cannot make a harness error
    chosen = classified(task, 127, "", tests={}, started=True)
    assert chosen.outcome == "unresolved"


def test_graded_files_changed_during_the_run_invalidate_it(suite, tmp_path):
    task = task_of(suite)
    passing = {name: "PASSED" for name in task.f2p + task.p2p}
    verdict = classified(task, 0, "", tests=passing, started=True, tampered=True)
    assert verdict.outcome == "unresolved" and "changed during the run" in verdict.reason


def test_harness_error_verdicts_are_not_reused(suite, tmp_path):
    task = task_of(suite)
    calls = []

    def broken_checkout(task, dest):
        calls.append(dest)
        raise RuntimeError("mirror down")

    grader = Grader(broken_checkout, ProcessSandbox(), tmp_path)
    first, second = grader.grade(task, task.patch), grader.grade(task, task.patch)
    assert first.outcome == second.outcome == "harness_error" and not second.cached
    assert len(calls) == 2 and (tmp_path / first.grade_key[:2] / first.grade_key / "verdict.json").exists()


def test_grade_key_covers_environment_and_grader_version(suite, monkeypatch):
    task = task_of(suite)
    key = grade_key(task, task.patch, "env-a")
    assert key != grade_key(task, task.patch, "env-b") and key != grade_key(task, task.patch + " ", "env-a")
    monkeypatch.setattr("pipeline.grading.artifacts.GRADER_VERSION", "999")
    assert key != grade_key(task, task.patch, "env-a")


def test_process_sandbox_output_cap_and_stdin(tmp_path):
    limits = Limits(timeout_s=20, output_bytes=4096)
    result = ProcessSandbox().run(tmp_path, "read x; echo got $x; yes", limits, stdin=b"hello\n")
    assert result.truncated and result.exit_code is None and not result.timed_out
    assert result.output.startswith("got hello") and len(result.output) <= 4096


def test_a_failed_restore_is_blamed_on_its_cause(suite, tmp_path, monkeypatch):
    """Harness errors leave the denominator: a patch must not be able to put itself there."""
    from pipeline.grading import grader as grading

    task = task_of(suite)
    grader = Grader(suite.checkout, ProcessSandbox(), tmp_path)
    real = grading.restore_tests

    def fails_on_the_patch(workdir, task):
        if (workdir / "blocker.py").exists():
            raise RuntimeError("restoring graded tests failed: blocked")
        return real(workdir, task)

    monkeypatch.setattr(grading, "restore_tests", fails_on_the_patch)
    blocker = (
        "diff --git a/blocker.py b/blocker.py\nnew file mode 100644\n--- /dev/null\n"
        "+++ b/blocker.py\n@@ -0,0 +1 @@\n+x = 1\n"
    )
    by_patch = grader.grade(task, blocker)
    assert by_patch.outcome == "unresolved" and "blocked" in by_patch.reason
    broken = Task.from_row(
        task.as_row()
        | {
            "before_repo_set_cmd": task.before_repo_set_cmd.rsplit("\n", 1)[0]
            + "\ngit checkout "
            + "0" * 40
            + " -- tests/test_issue_001.py"
        }
    )
    by_harness = grader.grade(broken, broken.patch)
    assert by_harness.outcome == "harness_error", by_harness.reason


def test_no_results_is_the_harnesss_failure_unless_the_unpatched_tree_gives_some(suite):
    task = task_of(suite)
    for exit_code in (0, 1, 2):  # whatever the run script's exit status
        blamed = classified(
            task, exit_code, "ansible-test: cannot exec", tests={}, started=True, base_gives_results=False
        )
        assert blamed.outcome == "harness_error" and "unpatched tree gives none" in blamed.reason
    patch_did_it = classified(task, 1, "", tests={}, started=True, base_gives_results=True)
    assert patch_did_it.outcome == "unresolved" and "the patch stopped them" in patch_did_it.reason


def test_a_runner_that_gives_no_results_on_the_base_tree_is_a_harness_error(suite, tmp_path):
    """A test command that parses nothing, on any tree: the gold patch gets harness_error, retried."""

    class Silent(PytestRunner):
        def plan(self, task, workspace):
            plan = super().plan(task, workspace)
            plan.command = "echo '@@candlebench-supervisor started'; exit 1"
            return plan

    task = task_of(suite)
    grader = Grader(suite.checkout, ProcessSandbox(), tmp_path, runner=Silent())
    gold = grader.grade(task, task.patch)
    assert gold.outcome == "harness_error" and "unpatched tree gives none" in gold.reason, gold.reason
    assert not grader.grade(task, task.patch).cached


def test_pro_rows_apply_with_plain_git_apply(suite, tmp_path):
    task = task_of(suite)
    drifted = "".join(
        line.rstrip("\n") + "  # drifted\n" if i == 5 and line.startswith(" ") else line
        for i, line in enumerate(task.patch.splitlines(keepends=True))
        if not line.startswith("index ")
    )
    lenient = Grader(suite.checkout, ProcessSandbox(), tmp_path / "a").grade(task, drifted)
    strict = Grader(suite.checkout, ProcessSandbox(), tmp_path / "b", apply_rule="git_apply")
    strict = strict.grade(task, drifted)
    assert strict.outcome == "patch_failed" and strict.apply_rule == "git_apply"
    assert lenient.apply_rule == "lenient" and lenient.apply_step in ("git_apply_3way", "patch_fuzz")
    with pytest.raises(ValueError, match="apply rule"):
        Grader(suite.checkout, ProcessSandbox(), tmp_path, apply_rule="fuzzy")


def test_binary_hunks_are_stripped_by_whole_lines_only():
    text = (
        "diff --git a/t.txt b/t.txt\n--- a/t.txt\n+++ b/t.txt\n@@ -1 +1 @@\n-Binary files x\n"
        "+see GIT binary patch docs\n"
    )
    binary = "diff --git a/i.png b/i.png\nindex 1..2 100644\nBinary files a/i.png and b/i.png differ\n"
    assert strip_binary_hunks(text + binary) == text
