"""A results channel the tested process cannot forge: the run's secret lives where its code is not.

Two scripts run in the sandbox. The supervisor (`python -I`, stdlib only, never imports the work
tree) reads the run's nonce from stdin, makes itself non-dumpable (so a same-uid process cannot
read its memory or open its /proc fds) and a child subreaper (so nothing the tests start can
escape being its descendant), and starts the pytest child with a pipe for results on an inherited
fd and pipes for stdout/stderr it forwards. The child holds no secret: before the work tree is on
sys.path (`-P -s`, PYTHONPATH withheld until then) it imports pytest, records who implements
pytest's internals, and writes a start record; after `pytest.main` it writes one final record.
When the child is gone the supervisor kills every remaining descendant, checks the channel (a
start record, exactly one final record last, nothing else, the same session token) and only then
prints the nonce-marked lines the grader reads: by then no process of the run is left to read the
nonce off the output pipe.

What this stops, and what it does not, is stated in `LIMITS` (and checked by
tests/test_result_channel.py). The supervisor script is in `channel_supervisor`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.grading.channel_supervisor import SUPERVISOR

MARK = "@@candlebench"
SUPERVISOR_STARTED = f"{MARK}-supervisor started"  # nonce-free: says only that the supervisor ran
SUPERVISOR_FILE = "cb_supervise.py"
CHILD_FILE = "cb_child.py"
CHANGED_FILE = "cb_changed.json"

LIMITS = """\
Stops: reading the secret (only the supervisor has it; it is non-dumpable, and prints it after
every other process of the run is dead); printing marked lines; malformed, extra or doubled
results records; ending early (os._exit, a signal, an atexit handler) before the results are
written; background processes outliving the tests; start-up shadowing from the work tree
(sitecustomize, usercustomize, .pth, pytest.py, _pytest/, an empty PYTHONPATH entry).
Detects, without preventing: pytest's internals (reports, runner, skipping, pluggy) replaced by
code from a file the patch changed, from exec'd code or from a file that does not exist; pytest
hooks implemented in files the patch changed (a conftest left in place, a plugin module); the
runner plugin's own methods replaced.
Does not stop: code in the test process written against this protocol (it can find the results
fd, read the session token from memory, write a plausible final record and hard-exit), code
compiled under a trusted file name, or a process that ptrace-injects into the sandbox's pid 1
(`timeout`, dumpable, same uid) to read the output pipe later. In-process code can always
rewrite the interpreter; this channel makes that deliberate, candlebench-specific work.
"""


CHILD = r'''"""candlebench's pytest process: results go to an inherited pipe; it holds no secret."""
import os
import sys

FD, CHANGED, PYTHONPATH, ARGS = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
os.set_inheritable(FD, False)  # tests' own subprocesses do not get the channel

import json  # noqa: E402  everything used at the end is imported now, before the work tree is
import secrets  # noqa: E402
import types  # noqa: E402

import pytest  # noqa: E402  the work tree is not on sys.path yet: nothing in it can shadow these
import _pytest.main  # noqa: E402
import _pytest.python  # noqa: E402
import _pytest.reports  # noqa: E402
import _pytest.runner  # noqa: E402
import _pytest.skipping  # noqa: E402
import pluggy  # noqa: E402

_write, _dumps, _getcwd, _realpath = os.write, json.dumps, os.getcwd, os.path.realpath
ROOT = _realpath(_getcwd())
TOKEN = secrets.token_hex(16)
with open(CHANGED) as handle:
    CHANGED_PATHS = frozenset(json.load(handle))
WATCHED = [
    ("_pytest.reports", "TestReport.from_item_and_call"), ("_pytest.reports", "TestReport.__init__"),
    ("_pytest.reports", "BaseReport.passed"), ("_pytest.reports", "BaseReport.failed"),
    ("_pytest.reports", "BaseReport.skipped"), ("_pytest.runner", "call_and_report"),
    ("_pytest.runner", "call_runtest_hook"), ("_pytest.runner", "runtestprotocol"),
    ("_pytest.runner", "pytest_runtest_makereport"), ("_pytest.runner", "pytest_runtest_call"),
    ("_pytest.runner", "CallInfo.from_call"), ("_pytest.python", "Function.runtest"),
    ("_pytest.python", "pytest_pyfunc_call"), ("_pytest.skipping", "pytest_runtest_makereport"),
    ("_pytest.skipping", "evaluate_xfail_marks"), ("_pytest.main", "pytest_runtestloop"),
    ("_pytest.main", "Session.pytest_runtest_logreport"), ("pluggy._callers", "_multicall"),
    ("pluggy._hooks", "HookCaller.__call__"), ("pluggy._hooks", "_HookCaller.__call__"),
    ("pluggy._manager", "PluginManager._hookexec"),
]


def send(record):
    data = (_dumps(record) + "\n").encode()
    while data:
        data = data[_write(FD, data):]


def lookup(module, dotted):
    """The raw attribute (descriptors unwrapped to their function), or None when absent."""
    obj = sys.modules.get(module)
    for part in dotted.split("."):
        if obj is None:
            return None
        obj = (vars(obj).get(part) if isinstance(obj, type) else getattr(obj, part, None))
    if isinstance(obj, (classmethod, staticmethod)):
        obj = obj.__func__
    if isinstance(obj, property):
        obj = obj.fget
    return obj


def code_of(obj):
    return getattr(obj, "__code__", None)


def origin(obj):
    """Where a function's code comes from: a path relative to the work tree, or an absolute one."""
    code = code_of(obj)
    if code is None:
        return "<no code>" if obj is not None else "<removed>"
    path = code.co_filename
    if not os.path.isfile(path):
        return "<%s>" % path.strip("<>")
    path = _realpath(path)
    return os.path.relpath(path, ROOT) if path.startswith(ROOT + os.sep) else path


def suspicious(where):
    return where.startswith("<") or where in CHANGED_PATHS


SNAPSHOT = {(m, d): (id(lookup(m, d)), code_of(lookup(m, d))) for m, d in WATCHED if lookup(m, d)}


class Results:
    def __init__(self):
        self._status = {}
        self.config = None

    @pytest.hookimpl(tryfirst=True)
    def pytest_configure(self, config):
        self.config = config

    @pytest.hookimpl(tryfirst=True)
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
        if self._status.get(report.nodeid) not in ("FAILED", "ERROR"):
            self._status[report.nodeid] = status


OWN = {name: code_of(function) for name, function in vars(Results).items() if code_of(function)}


def integrity(plugin):
    """What changed in pytest's machinery since start-up, when the change comes from the patch."""
    findings = []
    for (module, dotted), (ident, code) in SNAPSHOT.items():
        now = lookup(module, dotted)
        if id(now) != ident or code_of(now) is not code:
            where = origin(now)
            if suspicious(where):
                findings.append("%s.%s was replaced by code from %s" % (module, dotted, where))
    for name, code in OWN.items():
        if code_of(vars(Results).get(name)) is not code:
            findings.append("the runner's own %s was replaced" % name)
    if plugin.config is not None:
        for caller in vars(plugin.config.pluginmanager.hook).values():
            for impl in getattr(caller, "get_hookimpls", lambda: [])():
                where = origin(impl.function)
                if suspicious(where) and impl.plugin is not plugin:
                    findings.append("hook %s is implemented in %s" % (caller.name, where))
    return sorted(set(findings))


send({"kind": "start", "token": TOKEN, "pid": os.getpid(), "pytest": pytest.__version__})
# Only now is the work tree importable, as `python -m pytest` makes it: cwd, then PYTHONPATH.
original = json.loads(PYTHONPATH)
entries = [e or ROOT for e in original.split(os.pathsep)] if original is not None else []
sys.path[:0] = [ROOT, *entries]
if original is not None:
    os.environ["PYTHONPATH"] = original
plugin = Results()
code = pytest.main(ARGS, plugins=[plugin])
send({"kind": "final", "token": TOKEN, "exitstatus": int(code), "statuses": dict(plugin._status),
      "integrity": integrity(plugin)})
os.close(FD)
sys.exit(code)
'''


@dataclass
class SupervisedResult:
    """What the supervisor reported, read outside the sandbox."""

    supervisor_started: bool  # its nonce-free first line: False means the runner never ran at all
    complete: bool  # its nonce-marked block arrived whole (start, one end, counts agree)
    runner_started: bool  # the pytest child wrote its start record: repo code may have run after it
    statuses: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # any one makes the run invalid
    exitstatus: int | None = None

    @property
    def infrastructure_failed(self) -> bool:
        """True when nothing of the patch can have run: a harness error, not the patch's failure."""
        return not self.supervisor_started or (self.complete and not self.runner_started)


def write_changed(workspace: Path, changed_paths: list[str]) -> None:
    """Record the paths the patch changed (after restoring runner files): integrity checks read it."""
    (workspace / CHANGED_FILE).write_text(json.dumps(sorted(changed_paths)))


def write_runner(workspace: Path, changed_paths: list[str] | None = None) -> None:
    """Put the supervisor and the child in the workspace, and the changed paths unless already there."""
    (workspace / SUPERVISOR_FILE).write_text(SUPERVISOR)
    (workspace / CHILD_FILE).write_text(CHILD)
    if changed_paths is not None or not (workspace / CHANGED_FILE).exists():
        write_changed(workspace, changed_paths or [])


def command(pytest_args: str, workspace: str = "$CB_WORKSPACE") -> str:
    """The sandbox command; the nonce goes on its stdin, never in argv or the environment."""
    return (
        f'exec python -I -B "{workspace}/{SUPERVISOR_FILE}" "{workspace}/{CHILD_FILE}" '
        f'"{workspace}/{CHANGED_FILE}" {pytest_args}'
    )


_LINE = re.compile(r"^(\S+)(?: (.*))?$")


def parse_supervised(output: str, nonce: str) -> SupervisedResult:
    """Read the supervisor's block. Anything but exactly one complete block counts as no block."""
    prefix = f"{MARK} {nonce} "
    result = SupervisedResult(
        supervisor_started=SUPERVISOR_STARTED in output.splitlines(), complete=False, runner_started=False
    )
    starts = ends = 0
    statuses: dict[str, str] = {}
    problems: list[str] = []
    runner = False
    count = exitstatus = None
    for line in output.splitlines():
        if not line.startswith(prefix):
            continue
        match = _LINE.match(line[len(prefix) :])
        if not match:
            continue
        word, rest = match.group(1), match.group(2) or ""
        if word == "start":
            starts += 1
        elif word == "runner":
            runner = rest == "1"
        elif word == "invalid":
            problems.append(rest)
        elif word == "end":
            ends += 1
            numbers = rest.split()
            if len(numbers) == 2 and all(n.lstrip("-").isdigit() for n in numbers):
                count, exitstatus = int(numbers[0]), int(numbers[1])
        elif statuses.get(rest) not in ("FAILED", "ERROR"):
            statuses[rest] = word
    if starts == 1 and ends == 1 and count == len(statuses):
        result.complete, result.runner_started = True, runner
        result.statuses, result.problems, result.exitstatus = statuses, problems, exitstatus
    elif starts or ends:
        result.problems = ["the supervisor's report is incomplete or doubled"]
    else:
        result.problems = ["the supervisor ended without reporting"] if result.supervisor_started else []
    return result
