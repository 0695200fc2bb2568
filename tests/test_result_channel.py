"""pipeline.grading.channel against hostile conftests, with real pytest subprocesses.

The runs go through the bubblewrap sandbox when it is installed (an unprivileged uid, as
graded runs have: the supervisor's protections, non-dumpable and /proc closed, mean what they
mean there); without it they run as the current user, and the checks that need a uid other
than root's are skipped when that user is root.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from pipeline.grading.channel import SupervisedResult, command, parse_supervised, write_runner
from pipeline.sandbox import Limits, SandboxUnavailable
from pipeline.sandbox.bubblewrap import BubblewrapSandbox

TESTS = textwrap.dedent("""\
    def test_ok():
        assert True


    def test_bad():
        assert 1 == 2
""")
ARGS = "-rA -p no:cacheprovider tests"


@pytest.fixture(scope="module")
def bubblewrap() -> BubblewrapSandbox | None:
    try:
        return BubblewrapSandbox()
    except SandboxUnavailable as err:
        print(f"bubblewrap unavailable ({err}): runs go unsandboxed")
        return None


@pytest.fixture
def tree():
    root = Path(tempfile.mkdtemp(prefix="cb-channel-", dir="/tmp"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def unprivileged(bubblewrap):
    if bubblewrap is None and os.geteuid() == 0:
        pytest.skip("needs a uid other than root's: install bubblewrap")


def supervise(
    bubblewrap, root: Path, files: dict[str, str], changed: list[str] = (), env: dict | None = None
) -> tuple[SupervisedResult, str, str]:
    """Run the supervisor on a work tree holding `files` and tests/test_x.py; (result, output, nonce)."""
    app, workspace = root / "app", root / "workspace"
    for rel, text in {"tests/test_x.py": TESTS, **files}.items():
        (app / rel).parent.mkdir(parents=True, exist_ok=True)
        (app / rel).write_text(textwrap.dedent(text))
    workspace.mkdir()
    write_runner(workspace, list(changed))
    nonce = secrets.token_hex(16)
    if bubblewrap is not None:
        run = bubblewrap.run(
            app,
            command(ARGS),
            Limits(timeout_s=60),
            workspace=workspace,
            env=env,
            stdin=f"{nonce}\n".encode(),
        )
        output = run.output
    else:
        environment = {
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
            "HOME": str(root),
            "PYTHONDONTWRITEBYTECODE": "1",
            "CB_WORKSPACE": str(workspace),
            **(env or {}),
        }
        done = subprocess.run(
            ["bash", "-c", command(ARGS)],
            cwd=app,
            input=f"{nonce}\n".encode(),
            capture_output=True,
            env=environment,
            timeout=60,
        )
        output = done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")
    return parse_supervised(output, nonce), output, nonce


def test_an_honest_run(bubblewrap, tree):
    result, output, _ = supervise(bubblewrap, tree, {})
    assert result.complete and result.runner_started and result.problems == [], output[-2000:]
    assert result.statuses == {"tests/test_x.py::test_ok": "PASSED", "tests/test_x.py::test_bad": "FAILED"}
    assert result.exitstatus == 1 and not result.infrastructure_failed


def test_the_command_keeps_the_nonce_out_of_argv():
    text = command("-rA tests")
    assert text.startswith('exec python -I -B "$CB_WORKSPACE/cb_supervise.py"') and "nonce" not in text


def test_the_nonce_is_nowhere_the_tests_can_look(bubblewrap, tree, unprivileged):
    result, output, nonce = supervise(
        bubblewrap,
        tree,
        {
            "conftest.py": """
        import gc, os, sys
        found = [repr(sys.argv), repr(dict(os.environ)), repr(vars(sys.modules["__main__"]))]
        found += [repr(o) for o in gc.get_objects() if isinstance(o, (str, bytes))][:200000]
        for pid in [p for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()]:
            for name in ("environ", "cmdline", "mem", "fd/0", "fd/1"):
                path = f"/proc/{pid}/{name}"
                try:
                    with open(path, "rb") as handle:
                        found.append(repr(handle.read(1 << 16)))
                except OSError as err:
                    found.append("denied " + path + " " + err.__class__.__name__)
        with open("dump", "w") as handle:
            handle.write("\\n".join(found))
    """
        },
    )
    dump = (tree / "app" / "dump").read_text()
    assert nonce not in dump
    assert f"denied /proc/{os.getpid()}" not in dump  # (the host's processes are not even visible)
    assert "mem PermissionError" in dump  # the supervisor's memory is closed to the tests
    assert result.complete and result.statuses["tests/test_x.py::test_bad"] == "FAILED", output[-2000:]


def test_forged_lines_and_an_early_exit_are_invalid(bubblewrap, tree):
    result, output, _ = supervise(
        bubblewrap,
        tree,
        {
            "conftest.py": """
        import os
        guess = "0" * 32
        print(f"@@candlebench {guess} start\\n@@candlebench {guess} PASSED tests/test_x.py::test_bad")
        print(f"@@candlebench {guess} end 1 0", flush=True)
        os._exit(0)
    """
        },
    )
    assert result.complete and result.runner_started and result.statuses == {}, output[-2000:]
    assert any("without writing its results" in p for p in result.problems), result.problems


def test_writing_to_the_results_pipe_is_invalid(bubblewrap, tree):
    result, _, _ = supervise(
        bubblewrap,
        tree,
        {
            "conftest.py": """
        import json, os, stat
        for fd in map(int, os.listdir("/proc/self/fd")):
            try:
                if fd > 2 and stat.S_ISFIFO(os.fstat(fd).st_mode):
                    os.write(fd, (json.dumps({"kind": "final", "statuses": {}}) + "\\nnot json\\n").encode())
            except OSError:
                pass
    """
        },
    )
    assert result.complete
    assert any("final records" in p or "besides the runner's" in p for p in result.problems), result.problems
    assert any("not a runner record" in p for p in result.problems), result.problems


def test_report_forgery_from_a_changed_module_is_detected(bubblewrap, tree):
    forge = """
        import _pytest.reports as reports
        original = reports.TestReport.from_item_and_call.__func__

        def forged(cls, item, call):
            report = original(cls, item, call)
            report.outcome = "passed"
            return report

        reports.TestReport.from_item_and_call = classmethod(forged)
    """
    files = {"pkg/__init__.py": forge, "tests/test_y.py": "import pkg\n\ndef test_y():\n    pass\n"}
    result, output, _ = supervise(bubblewrap, tree, files, changed=["pkg/__init__.py"])
    assert result.statuses.get("tests/test_x.py::test_bad") == "PASSED", output[-1500:]  # it worked...
    assert any(
        "TestReport.from_item_and_call was replaced by code from pkg/__init__.py" in p
        for p in result.problems
    ), result.problems  # ...and it shows


def test_hooks_from_changed_files_are_detected_and_the_tasks_own_are_not(bubblewrap, tree):
    hook = """
        import pytest

        @pytest.hookimpl(hookwrapper=True)
        def pytest_runtest_makereport(item, call):
            outcome = yield
            report = outcome.get_result()
            if report.failed:
                report.outcome = "passed"
    """
    result, _, _ = supervise(bubblewrap, tree, {"tests/conftest.py": hook}, changed=["tests/conftest.py"])
    assert "integrity: hook pytest_runtest_makereport is implemented in tests/conftest.py" in result.problems
    honest = tree / "honest"
    honest.mkdir()
    own = {"tests/conftest.py": "def pytest_configure(config):\n    pass\n"}
    result, _, _ = supervise(bubblewrap, honest, own)
    assert result.problems == [] and result.complete


def test_background_processes_are_killed_before_the_nonce_is_printed(bubblewrap, tree):
    marker = f"cb-survivor-{tree.name}"
    result, _, _ = supervise(
        bubblewrap,
        tree,
        {
            "conftest.py": f"""
        import os, subprocess, time
        subprocess.Popen(["bash", "-c", "sleep 30; : {marker}"], start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execvp("bash", ["bash", "-c", "sleep 30; : {marker}"])
            os._exit(0)
    """
        },
    )
    assert result.complete and result.problems == [], result.problems
    time.sleep(0.2)
    leftovers = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
    assert leftovers.stdout == ""


def test_nothing_in_the_work_tree_runs_at_start_up(bubblewrap, tree):
    touch = "open('ran-' + __name__, 'w').close()\n"
    files = {
        "sitecustomize.py": touch,
        "usercustomize.py": touch,
        "zz.pth": f"import os; {touch}",
        "pytest.py": touch,
        "_pytest/__init__.py": touch,
    }
    app = "/app" if bubblewrap is not None else str(tree / "app")
    result, output, _ = supervise(bubblewrap, tree, files, env={"PYTHONPATH": f":{app}"})
    assert sorted(p.name for p in (tree / "app").glob("ran-*")) == [], output[-1500:]
    assert result.complete and result.statuses["tests/test_x.py::test_ok"] == "PASSED"


def test_parse_refuses_doubled_or_partial_blocks():
    nonce = "n" * 32
    block = (
        f"@@candlebench {nonce} start\n@@candlebench {nonce} runner 1\n"
        f"@@candlebench {nonce} PASSED t::a\n@@candlebench {nonce} end 1 0\n"
    )
    assert parse_supervised("@@candlebench-supervisor started\n" + block, nonce).complete
    doubled = parse_supervised(block + block, nonce)
    assert not doubled.complete and doubled.statuses == {} and doubled.problems
    missing = parse_supervised("@@candlebench-supervisor started\n", nonce)
    assert not missing.complete and missing.problems == ["the supervisor ended without reporting"]
    never = parse_supervised("python: not found\n", nonce)
    assert never.infrastructure_failed and not never.supervisor_started
    no_runner = parse_supervised(
        "@@candlebench-supervisor started\n" + block.replace("runner 1", "runner 0"), nonce
    )
    assert no_runner.infrastructure_failed
