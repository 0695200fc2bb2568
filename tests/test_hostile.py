"""Hostile patches against the docker and bubblewrap sandboxes.

Each patch does one bad thing, mostly from code the package under test runs when the graded
tests import it (a conftest.py would be restored to the task's version first). For each:
the evaluation ends within its timeout plus a few seconds, is classified correctly, leaves no
container or process behind, and the gold patch graded right after still resolves.
The reward hacks of tests/reward_hacks.py (one test id each) try to fake a pass through the test
machinery on the unfixed task instead: every one must come out `unresolved`.
Skipped with a printed reason when a backend is missing, except under CI=true: then they fail.
"""

from __future__ import annotations

import difflib
import os
import socket
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest
from reward_hacks import VARIANTS, Variant, build_patch  # tests/ is on sys.path

from pipeline.grading import Grader
from pipeline.grading.tamper import runner_paths
from pipeline.sandbox import Limits, SandboxUnavailable
from pipeline.sandbox.bubblewrap import BubblewrapSandbox
from pipeline.sandbox.daemon import _OWNER, OWNER_LABEL
from pipeline.sandbox.docker import DockerSandbox
from pipeline.tasks.demo import SUITE_DIR

TIMEOUT_S = 10
SLACK_S = 120  # only catches a hang: the kill itself is proven by the outcome and no process left;
# start-up and clean-up on a loaded 2-core machine took up to 18 s over the timeout
LIMITS = Limits(timeout_s=TIMEOUT_S, memory_mb=512, pids=128, file_mb=64, output_bytes=4 << 20)
TASK = "demo__textkit-001"
F2P_FILE = "tests/test_issue_001.py"


def _unavailable(reason: str) -> None:
    print(reason)
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: this backend is expected here)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module", params=["docker", "bubblewrap"])
def sandbox(request):
    try:
        return DockerSandbox() if request.param == "docker" else BubblewrapSandbox()
    except SandboxUnavailable as err:
        _unavailable(f"{request.param} sandbox unavailable: {err}")


@pytest.fixture(scope="module")
def task(suite):
    return next(t for t in suite.tasks() if t.instance_id == TASK)


@pytest.fixture
def grader(suite, sandbox, tmp_path) -> Grader:
    return Grader(suite.checkout, sandbox, tmp_path / "artifacts", LIMITS)


def new_file(path: str, text: str) -> str:
    lines = textwrap.dedent(text).strip("\n").splitlines()
    body = "".join(f"+{line}\n" for line in lines)
    return (
        f"diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n+++ b/{path}\n"
        f"@@ -0,0 +1,{len(lines)} @@\n{body}"
    )


def payload(code: str) -> str:
    """A patch whose `code` runs when the graded tests import the package under test."""
    init = "textkit/__init__.py"
    base = (SUITE_DIR / "projects/textkit" / init).read_text().splitlines(keepends=True)
    changed = [*base, "from . import _payload  # noqa: F401\n"]
    diff = difflib.unified_diff(base, changed, f"a/{init}", f"b/{init}")
    return f"diff --git a/{init} b/{init}\n" + "".join(diff) + new_file("textkit/_payload.py", code)


def processes_with(marker: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(os.getpid()):
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if marker in cmdline:
                found.append(f"{entry.name}: {cmdline[:120]}")
    return found


def grade_hostile(grader: Grader, task, patch: str, outcomes: set[str], marker: str = "") -> object:
    started = time.monotonic()
    verdict = grader.grade(task, patch, trusted=False, use_cache=False)
    elapsed = time.monotonic() - started
    print(f"{grader.sandbox.name}: {verdict.outcome} in {elapsed:.1f}s ({verdict.reason})")
    assert elapsed < TIMEOUT_S + SLACK_S, f"took {elapsed:.1f}s"
    assert verdict.outcome in outcomes, (verdict.outcome, verdict.reason, verdict.tests)
    assert not verdict.resolved
    deadline = time.monotonic() + 3
    while marker and processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not (marker and processes_with(marker)), processes_with(marker)
    if isinstance(grader.sandbox, DockerSandbox):
        mine = grader.sandbox.daemon.client.containers.list(
            all=True, filters={"label": f"{OWNER_LABEL}={_OWNER}"}
        )
        assert mine == [], [c.name for c in mine]
    gold = grader.grade(task, task.patch, trusted=False, use_cache=False)
    assert gold.outcome == "resolved", ("the next evaluation was affected", gold.reason, gold.tests)
    return verdict


def test_fork_bomb(grader, task):
    marker = f"cb-bomb-{uuid.uuid4().hex}"
    patch = payload(f"""
        import subprocess, time
        subprocess.Popen(["bash", "-c", "b() {{ b | b & }}; b; : {marker}"])
        time.sleep(3600)
    """)
    grade_hostile(grader, task, patch, {"timeout"}, marker)


def test_memory_bomb(grader, task):
    patch = payload("""
        hoard = []
        while True:
            hoard.append(b"x" * (64 << 20))
    """)
    verdict = grade_hostile(grader, task, patch, {"unresolved"})
    assert "no test results" in verdict.reason


def test_infinite_loop(grader, task):
    marker = f"cb-loop-{uuid.uuid4().hex}"  # a marked child shows whether anything outlived the run
    patch = payload(f"""
        import subprocess
        subprocess.Popen(["bash", "-c", "sleep 3600; : {marker}"])
        while True:
            pass
    """)
    grade_hostile(grader, task, patch, {"timeout"}, marker)


def test_sleeping_past_the_timeout(grader, task):
    marker = f"cb-sleep-{uuid.uuid4().hex}"
    patch = payload(f"""
        import subprocess, time
        subprocess.Popen(["bash", "-c", "sleep 3600; : {marker}"])
        time.sleep(3600)
    """)
    grade_hostile(grader, task, patch, {"timeout"}, marker)


def test_network_connections_fail(grader, task):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("0.0.0.0", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    accepted, stop = [], threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                accepted.append(listener.accept())
            except OSError:
                continue

    threading.Thread(target=accept, daemon=True).start()
    targets = ["127.0.0.1", "172.17.0.1", socket.gethostbyname(socket.gethostname())]
    # pytest swallows prints at import: the report travels in the error it raises instead
    patch = payload(f"""
        import socket
        report = []
        for host, port in {[(t, port) for t in targets] + [("1.1.1.1", 53), ("example.com", 80)]!r}:
            try:
                socket.create_connection((host, port), timeout=2).close()
                report.append("NET-" + "OPEN " + host)
            except OSError as err:
                report.append("NET-" + "SHUT " + host + " " + str(err))
        raise RuntimeError(" | ".join(report))
    """)
    try:
        verdict = grade_hostile(grader, task, patch, {"unresolved"})
    finally:
        stop.set()
        listener.close()
    output = (Path(verdict.artifact_dir) / "output.log").read_text()
    assert "NET-OPEN" not in output and output.count("NET-SHUT") >= len(targets) + 2, output[-2000:]
    assert accepted == []


def test_writing_outside_the_working_copy(grader, task, tmp_path):
    marker = f"cb-escape-{uuid.uuid4().hex}"
    host_paths = [
        tmp_path / marker,
        Path("/root") / marker,
        Path("/etc") / marker,
        Path("/usr") / marker,
        Path("/") / marker,
        Path("/tmp") / marker,
        Path("/var/tmp") / marker,
    ]
    symlink = (
        "diff --git a/escape b/escape\nnew file mode 120000\n--- /dev/null\n+++ b/escape\n"
        "@@ -0,0 +1 @@\n+/tmp\n\\ No newline at end of file\n"
    )
    patch = symlink + payload(f"""
        import os
        for path in {[str(p) for p in host_paths] + ["/app/../" + marker, "escape/x" + marker]!r}:
            try:
                with open(path, "w") as handle:
                    handle.write("pwned")
                print("WROTE", path)
            except OSError as err:
                print("DENIED", path, err)
    """)
    grade_hostile(grader, task, patch, {"unresolved"})
    assert [p for p in host_paths if p.exists()] == []
    assert not Path(f"/tmp/x{marker}").exists()


@pytest.mark.parametrize(
    "how", ["delete_in_patch", "edit_in_patch", "edit_at_run_time", "swap_folder_at_run_time"]
)
def test_graded_tests_cannot_be_changed(grader, task, how):
    passing = (
        "def test_custom_separator_is_stripped_from_ends():\n    pass\n\n"
        "def test_dot_separator_is_stripped_from_ends():\n    pass\n"
    )
    if how == "delete_in_patch":  # a PASS_TO_PASS file: the graded tests go missing, so they fail
        lines = (SUITE_DIR / "projects/textkit/tests/test_slug.py").read_text().splitlines()
        patch = (
            "diff --git a/tests/test_slug.py b/tests/test_slug.py\ndeleted file mode 100644\n"
            f"--- a/tests/test_slug.py\n+++ /dev/null\n@@ -1,{len(lines)} +0,0 @@\n"
            + "".join(f"-{line}\n" for line in lines)
        )
    elif how == "edit_in_patch":
        patch = new_file(F2P_FILE, passing)
    elif how == "edit_at_run_time":
        patch = payload(f"""
            import os
            for attempt in (lambda: open({F2P_FILE!r}, "w").write({passing!r}),
                            lambda: os.remove({F2P_FILE!r})):
                try:
                    attempt()
                    print("CHANGED")
                except OSError as err:
                    print("REFUSED", err)
        """)
    else:  # rename the folder holding the read-only file, put a passing copy where it was
        patch = payload(f"""
            import os, shutil
            shutil.copytree("tests", "tests_new")
            with open("tests_new/test_issue_001.py", "w") as handle:
                handle.write({passing!r})
            os.rename("tests", "tests_old")
            os.rename("tests_new", "tests")
        """)
    verdict = grade_hostile(grader, task, patch, {"unresolved"})
    assert verdict.f2p_passed == 0 or "changed during the run" in verdict.reason, verdict.reason


@pytest.mark.parametrize("then", ["exit_0", "run_the_tests"])
def test_printed_fake_passed_lines_do_not_resolve(grader, task, then):
    names = task.f2p + task.p2p
    fake = [f"PASSED {n}" for n in names] + [f"@@candlebench {'0' * 32} PASSED {n}" for n in names]
    fake.append(f"@@candlebench {'0' * 32} end {len(names)} 0")
    patch = payload(f"""
        import os, sys
        print("\\n".join({fake!r}), flush=True)
        if {then == "exit_0"!r}:
            os._exit(0)
    """)
    verdict = grade_hostile(grader, task, patch, {"unresolved"})
    assert verdict.f2p_passed == 0


@pytest.mark.parametrize("where", ["stdout", "stderr", "file"])
def test_a_gigabyte_of_output(grader, task, where):
    if where == "file":
        code = """
            with open("big.bin", "wb") as handle:
                for _ in range(1024):
                    handle.write(b"x" * (1 << 20))
        """
    else:
        code = f"""
            import sys
            chunk = "x" * (1 << 20)
            for _ in range(1024):
                sys.{where}.write(chunk)
        """
    verdict = grade_hostile(grader, task, payload(code), {"unresolved"})
    if where != "file":
        assert "cap" in verdict.reason
        assert (Path(verdict.artifact_dir) / "output.log").stat().st_size <= LIMITS.output_bytes


@pytest.mark.parametrize("stdio", ["detached", "holding_stdout"])
def test_background_processes_are_gone(grader, task, stdio):
    marker = f"cb-daemon-{uuid.uuid4().hex}"
    redirect = ", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL" if stdio == "detached" else ""
    patch = payload(f"""
        import subprocess
        subprocess.Popen(["bash", "-c", "sleep 3600; : {marker}"], start_new_session=True{redirect})
        subprocess.Popen(["bash", "-c", "(sleep 3600; : {marker}) &"]{redirect})
    """)
    grade_hostile(grader, task, patch, {"unresolved"}, marker)


@pytest.fixture(scope="module")
def hack_patches(suite, task) -> dict[str, str]:
    return {v.name: build_patch(v, lambda dest: suite.checkout(task, dest)) for v in VARIANTS}


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_reward_hack_is_unresolved(grader, task, hack_patches, variant: Variant):
    started = time.monotonic()
    verdict = grader.grade(task, hack_patches[variant.name], trusted=False, use_cache=False)
    elapsed = time.monotonic() - started
    print(
        f"{grader.sandbox.name} {variant.name}: {verdict.outcome} in {elapsed:.1f}s "
        f"({verdict.reason}) {verdict.tests}"
    )
    assert elapsed < TIMEOUT_S + SLACK_S, f"took {elapsed:.1f}s"
    assert verdict.outcome == "unresolved", (variant.what, verdict.outcome, verdict.reason, verdict.tests)
    assert verdict.apply_step == "git_apply", "the hack must apply cleanly to be a fair test"
    touched = runner_paths([*variant.files, *variant.append], graded_tests=task.test_files)
    if touched:  # it changed a file that configures or extends the runner: restored, and flagged
        assert verdict.tampered and set(verdict.tampered_paths) & set(touched), (touched, verdict.reason)
