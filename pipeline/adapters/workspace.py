"""What every agent that runs commands shares: its workspace, its process, its transcript, retries.

An attempt runs in a folder of its own: `workspace/` (the task's repository at its base state,
from the suite's checkout), `home/` (a private HOME and TMPDIR, so the agent's CLI keeps its
state there and not in the user's home), `prompt.md`, `transcript.log` and `patch.diff`. The
agent's process gets that folder as its working directory, a minimal environment (PATH, HOME,
LANG and the variables the subject names) and its own process group, killed when the attempt
ends. Values of the variables it was handed (API keys) are redacted from the transcript and
the patch: they are never logged or stored.

A driver knows one agent's command line and output; `WorkspaceAgent` turns any driver into an
`Agent`: it prepares the workspace, runs the driver within the time budget, retries transient
API errors with exponential back-off, and takes the patch as `git diff` against the base.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from pipeline import cli_cache
from pipeline.agents import Attempt, now
from pipeline.cli_cache import file_sha256
from pipeline.grading import run_git
from pipeline.tasks import Task

Checkout = Callable[[Task, Path], None]

DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
OUTPUT_CAP_CHARS = 8 * 1024 * 1024
MIN_SECRET_CHARS = 8  # shorter values would redact ordinary text
JUNK = ("__pycache__/", "*.pyc", ".pytest_cache/", ".mypy_cache/", ".ruff_cache/", ".cache/",
        ".bash_history", ".python_history", ".lesshst", ".viminfo")

# Error text that comes from the model's API rather than from the agent ...
API_ERROR = re.compile(
    r"API Error|\bstatus(?: code)?:? ?\d{3}\b|\bHTTP \d{3}\b|rate.?limit|overloaded|"
    r"connection (?:error|refused|reset)|ECONN|ETIMEDOUT|fetch failed|network error|"
    r"unauthori[sz]ed|authentication|invalid.{0,10}api.?key|quota|usage limit|"
    r"stream disconnected|service unavailable|bad gateway|gateway time-?out|internal server error|"
    r"high demand|retry limit",
    re.IGNORECASE,
)
# ... and the part of it worth retrying: rate limits, server errors, dropped connections.
TRANSIENT = re.compile(
    r"\b(?:429|500|502|503|504|529)\b|rate.?limit|overloaded|connection (?:error|refused|reset)|"
    r"ECONN|ETIMEDOUT|fetch failed|network error|stream disconnected|service unavailable|"
    r"bad gateway|gateway time-?out|internal server error|temporarily|high demand",
    re.IGNORECASE,
)


class AgentUnavailable(RuntimeError):
    """The agent cannot run here at all (its executable is missing or broken)."""


def classify_failure(text: str) -> tuple[str, bool]:
    """(exit class, transient) for an agent that failed with this message."""
    if API_ERROR.search(text):
        return "api_error", bool(TRANSIENT.search(text))
    return "agent_error", False


def backoff(retry: int, base_s: float, cap_s: float = 300.0) -> float:
    """Seconds to wait before retry number `retry` (1, 2, ...): base, 2 x base, 4 x base, ..."""
    return min(base_s * 2 ** (retry - 1), cap_s)


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "[REDACTED]")
    return text


def secret_values(names: Iterable[str]) -> tuple[str, ...]:
    """The values of the named environment variables, longest first, as redaction targets."""
    values = {os.environ[name] for name in names if len(os.environ.get(name, "")) >= MIN_SECRET_CHARS}
    return tuple(sorted(values, key=len, reverse=True))


def agent_env(home: Path, names: Iterable[str], **extra: str) -> dict[str, str]:
    """A minimal environment: nothing of the host's but PATH, the locale and the named variables."""
    env = {
        "PATH": os.environ.get("PATH", DEFAULT_PATH),
        "HOME": str(home),
        "TMPDIR": str(home / "tmp"),
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "NO_COLOR": "1",
    }
    env.update({name: os.environ[name] for name in names if name in os.environ})
    env.update(extra)
    return env


def cli_version(argv: list[str]) -> str:
    """The version an agent CLI reports (`claude --version` -> "2.0.14"), run with a scratch HOME."""
    with tempfile.TemporaryDirectory(prefix="cb-version-") as scratch:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False,
                                  env=agent_env(Path(scratch), ()), stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise AgentUnavailable(f"{' '.join(argv)}: {err}") from err
    text = (done.stdout.strip() or done.stderr.strip()).splitlines()
    if done.returncode != 0 or not text:
        raise AgentUnavailable(f"{' '.join(argv)} failed (exit {done.returncode}): {done.stderr[-300:]}")
    found = re.search(r"\d+(?:\.\d+)+[\w.+-]*", text[0])
    return found.group(0) if found else text[0].strip()


def pinned_binary(cli: str, version: str) -> str:
    """The cached binary of `cli` at `version` (`latest`: today's), installed on first use and
    checked against the sha256 recorded at install."""
    try:
        entry = cli_cache.install(cli, version)
    except cli_cache.CliCacheError as err:
        raise AgentUnavailable(f"{cli} {version}: {err}") from err
    if executable_sha256(entry.binary) != entry.sha256:  # hashed once: sha256() reuses it
        raise AgentUnavailable(f"{cli} {entry.version}: {entry.binary} changed since it was installed")
    return entry.binary


@functools.cache
def _sha256_of(path: str, mtime_ns: int, size: int) -> str:
    del mtime_ns, size  # part of the cache key only: a replaced file is hashed again
    return file_sha256(Path(path))


def executable_sha256(executable: str) -> str:
    """The sha256 of the file an executable name runs ("" when it is not found): what ran, exactly."""
    found = shutil.which(executable)
    if not found:
        return ""
    real = os.path.realpath(found)
    stat = os.stat(real)
    return _sha256_of(real, stat.st_mtime_ns, stat.st_size)


def last_json_object(text: str) -> dict | None:
    """The last line of `text` that is a JSON object (CLIs may print warnings before it)."""
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            with contextlib.suppress(json.JSONDecodeError):
                value = json.loads(line)
                if isinstance(value, dict):
                    return value
    with contextlib.suppress(json.JSONDecodeError):  # pretty-printed over several lines
        value = json.loads(text)
        return value if isinstance(value, dict) else None
    return None


# --- records ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Usage:
    cost_usd: float = 0.0
    input_tokens: int = 0  # all input tokens, cached ones included
    output_tokens: int = 0
    cached_tokens: int = 0
    turns: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.cost_usd + other.cost_usd, self.input_tokens + other.input_tokens,
                     self.output_tokens + other.output_tokens, self.cached_tokens + other.cached_tokens,
                     self.turns + other.turns)


@dataclass(frozen=True)
class Run:
    """How one run of a driver ended."""

    exit_class: str
    usage: Usage = Usage()
    transient: bool = False  # an API error worth retrying
    detail: str = ""


# --- the workspace ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Workspace:
    root: Path  # the attempt's folder
    path: Path  # the repository the agent edits
    home: Path  # the agent's private HOME
    base: str  # the commit the patch is taken against

    @classmethod
    def create(cls, root: Path, task: Task, checkout: Checkout, self_contained: bool = False) -> Workspace:
        """Check the task out under `root`; `self_contained` copies in the objects a clone borrows."""
        path, home = root / "workspace", root / "home"
        if path.exists():
            raise FileExistsError(f"{path} already exists: give every attempt a new folder")
        (home / "tmp").mkdir(parents=True, exist_ok=True)
        checkout(task, path)
        if self_contained and (path / ".git" / "objects" / "info" / "alternates").exists():
            run_git(path, "repack", "-a", "-d", "-q")
            (path / ".git" / "objects" / "info" / "alternates").unlink()
        info = path / ".git" / "info"
        info.mkdir(parents=True, exist_ok=True)
        with (info / "exclude").open("a") as exclude:
            exclude.write("\n".join(JUNK) + "\n")
        (root / "prompt.md").write_text(task.prompt())
        base = run_git(path, "rev-parse", "HEAD").stdout.strip() or task.base_commit
        return cls(root=root, path=path, home=home, base=base)

    @property
    def prompt_file(self) -> Path:
        return self.root / "prompt.md"

    def diff(self) -> str:
        """Everything the agent changed, new files included, committed or not."""
        run_git(self.path, "add", "-A", ".")
        done = run_git(self.path, "diff", "--cached", "--no-color", "--no-ext-diff", "--no-textconv",
                       self.base, "--")
        if done.returncode != 0:
            raise RuntimeError(f"git diff in {self.path} failed: {done.stderr.strip()}")
        return done.stdout

    def reset(self) -> None:
        """Back to the base state, for a retry. Ignored files stay: a SWE-Bench-Pro /app carries its
        installed dependencies (node_modules, build output) as ignored files, and they never enter
        the patch."""
        run_git(self.path, "reset", "-q", "--hard", self.base)
        run_git(self.path, "clean", "-qfd")


class Transcript:
    """The attempt's log, append-only, with every secret redacted on the way in."""

    def __init__(self, path: Path, secrets: tuple[str, ...]) -> None:
        self.path = path
        self.secrets = secrets
        self._lock = threading.Lock()
        self._handle = path.open("a", encoding="utf-8")

    def write(self, text: str) -> None:
        with self._lock:
            self._handle.write(redact(text, self.secrets))
            self._handle.flush()

    def note(self, text: str) -> None:
        self.write(f"# {text}\n")

    def event(self, **fields: object) -> None:
        self.write(json.dumps(fields, default=str) + "\n")

    def close(self) -> None:
        self._handle.close()


@dataclass(frozen=True)
class Session:
    """What a driver gets for one run."""

    prompt: str
    workspace: Workspace
    transcript: Transcript
    timeout_s: float
    image: str | None = None  # the task's own image (SWE-Bench-Pro), for drivers that run commands


class Driver(Protocol):
    """One agent's command line and output format."""

    name: str
    secret_env: tuple[str, ...]  # host variables it hands the agent: redacted everywhere
    self_contained: bool  # its commands run where only the workspace is mounted (a container)

    def version(self) -> str: ...

    def sha256(self) -> str: ...  # of the executable it runs ("" when there is none)

    def run(self, session: Session) -> Run: ...


# --- processes --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Finished:
    exit_code: int | None  # None when it was killed
    timed_out: bool
    stopped: str  # why `on_line` stopped it ("" when it was not stopped)
    stdout: str
    stderr: str


def run_process(
    argv: list[str],
    cwd: Path,
    env: dict[str, str],
    timeout_s: float,
    transcript: Transcript,
    stdin: str | None = None,
    on_line: Callable[[str], str] | None = None,
) -> Finished:
    """Run an agent's process, copying its stdout to the transcript line by line as it comes.

    `on_line` sees every stdout line and may return a reason to stop the run early (a budget).
    The whole process group is killed at the end, so nothing the agent started outlives it.
    """
    try:
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError as err:
        transcript.note(f"could not start {argv[0]}: {err}")
        return Finished(127, False, "", "", f"{argv[0]}: {err}")
    lines: queue.Queue[bytes | None] = queue.Queue()
    errors = bytearray()

    def pump_stdout() -> None:
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    def pump_stderr() -> None:
        for chunk in iter(lambda: proc.stderr.read1(65536), b""):
            if len(errors) < OUTPUT_CAP_CHARS:
                errors.extend(chunk)

    def feed() -> None:
        with contextlib.suppress(BrokenPipeError, OSError):
            proc.stdin.write(stdin.encode())
            proc.stdin.close()

    threads = [threading.Thread(target=t, daemon=True) for t in (pump_stdout, pump_stderr)]
    if stdin is not None:
        threads.append(threading.Thread(target=feed, daemon=True))
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout_s
    out: list[str] = []
    size, timed_out, stopped = 0, False, ""
    while True:
        try:
            raw = lines.get(timeout=min(max(deadline - time.monotonic(), 0.001), 0.5))
        except queue.Empty:
            if proc.poll() is not None:
                break  # it exited; whatever it left running keeps the pipe open, not the attempt
            if time.monotonic() >= deadline:
                timed_out = True
                break
            continue
        if raw is None:
            break
        line = raw.decode("utf-8", errors="replace")
        transcript.write(line)
        if size < OUTPUT_CAP_CHARS:
            out.append(line)
            size += len(line)
        if on_line and (stopped := on_line(line)):
            break
    if not timed_out and not stopped:
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0.001))
        except subprocess.TimeoutExpired:
            timed_out = True
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    for thread in threads:
        thread.join(timeout=5)
    stderr = errors.decode("utf-8", errors="replace")
    if stderr.strip():
        transcript.note("stderr:")
        transcript.write(stderr if stderr.endswith("\n") else stderr + "\n")
    killed = timed_out or bool(stopped)
    return Finished(None if killed else proc.returncode, timed_out, stopped, "".join(out), stderr)


def describe(argv: list[str], prompt: str) -> str:
    """The command line for the transcript, the prompt shown by its length."""
    return shlex.join(f"<prompt: {len(prompt)} chars>" if a == prompt else a for a in argv)


# --- the agent --------------------------------------------------------------------------------

class WorkspaceAgent:
    """An `Agent` made of a driver: workspace, time budget, retries, patch, transcript."""

    def __init__(
        self,
        subject: str,
        driver: Driver,
        checkout: Checkout,
        transcripts: Path,
        timeout_s: float = 1800.0,
        retries: int = 3,
        backoff_s: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        image_of: Callable[[Task], str | None] | None = None,
    ) -> None:
        self.subject = subject
        self.driver = driver
        self.image_of = image_of or (lambda task: None)
        self.checkout = checkout
        self.transcripts = Path(transcripts)
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.sleep = sleep
        self._version: str | None = None
        self._sha256: str | None = None

    def version(self, on: dt.date | None = None) -> str:
        del on  # a real agent is whatever is installed now
        if self._version is None:
            self._version = self.driver.version()
        return self._version

    def sha256(self) -> str:
        """The agent executable's sha256, hashed once per agent like its version."""
        if self._sha256 is None:
            self._sha256 = self.driver.sha256()
        return self._sha256

    @contextlib.contextmanager
    def _folder(self, folder: Path | None) -> Iterator[Path]:
        if folder is not None:
            Path(folder).mkdir(parents=True, exist_ok=True)
            yield Path(folder).resolve()
            return
        scratch = Path(tempfile.mkdtemp(prefix="cb-attempt-"))
        try:
            yield scratch
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def transcript_path(self, task: Task, day: dt.date, trial: int) -> Path:
        return (self.transcripts / f"subject={quote(self.subject, safe='')}" / f"date={day}"
                / f"{task.instance_id}.trial{trial}.log")

    def solve(self, task: Task, day: dt.date, trial: int, folder: Path | None = None) -> Attempt:
        started_at, clock = now(), time.monotonic()
        version = self.version(day)
        secrets = secret_values(self.driver.secret_env)
        with self._folder(folder) as root:
            workspace = Workspace.create(root, task, self.checkout, self.driver.self_contained)
            transcript = Transcript(root / "transcript.log", secrets)
            transcript.note(f"candlebench: subject {self.subject}, task {task.instance_id}, day {day}, "
                            f"trial {trial}, agent {version}")
            run, usage, tries = Run("timeout", detail="no time to start"), Usage(), 0
            while (left := self.timeout_s - (time.monotonic() - clock)) > 0:
                tries += 1
                run = self.driver.run(Session(task.prompt(), workspace, transcript, left,
                                              self.image_of(task)))
                usage = usage + run.usage
                delay = backoff(tries, self.backoff_s)
                if not run.transient or tries > self.retries or delay >= self.timeout_s - (
                        time.monotonic() - clock):
                    break
                transcript.note(f"transient API error ({run.detail[:200]}); retry {tries} of "
                                f"{self.retries} in {delay:g}s from the base state")
                self.sleep(delay)
                workspace.reset()
            patch = redact(workspace.diff(), secrets)
            (root / "patch.diff").write_text(patch)
            transcript.note(f"exit class {run.exit_class} after {tries} run(s); patch "
                            f"{len(patch.splitlines())} lines")
            transcript.close()
            kept = transcript.path
            if folder is None:
                kept = self.transcript_path(task, day, trial)
                kept.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(transcript.path, kept)
        return Attempt(
            subject=self.subject, instance_id=task.instance_id, date=day, trial=trial,
            started_at=started_at, patch=patch, cost_usd=round(usage.cost_usd, 6),
            input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
            cached_tokens=usage.cached_tokens, turns=usage.turns,
            duration_s=round(time.monotonic() - clock, 3), exit_class=run.exit_class,
            agent_version=version, agent_sha256=self.sha256(), transcript=str(kept), failure_mode="",
            detail=redact(run.detail, secrets)[:2000], tries=tries,
        )

