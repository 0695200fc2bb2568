"""An agent's process: a minimal environment, secrets redacted, output teed to the transcript,
its process tree killed at the end; and the small facts drivers read off their CLIs (version,
executable digest, failure class)."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.agents import cli_cache
from pipeline.agents.cli_cache import file_sha256
from pipeline.agents.exits import ExitClass
from pipeline.sandbox import Limits
from pipeline.sandbox.supervisor import supervise

if TYPE_CHECKING:
    from pipeline.agents.session import Transcript

DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"

OUTPUT_CAP_CHARS = 8 * 1024 * 1024

MIN_SECRET_CHARS = 8  # shorter values would redact ordinary text

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
        return ExitClass.API_ERROR, bool(TRANSIENT.search(text))
    return ExitClass.AGENT_ERROR, False


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
            done = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
                env=agent_env(Path(scratch), ()),
                stdin=subprocess.DEVNULL,
            )
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
    Its process group and everything below it are killed at the end, so nothing the agent
    started outlives it.
    """
    try:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as err:
        transcript.note(f"could not start {argv[0]}: {err}")
        return Finished(127, False, "", "", f"{argv[0]}: {err}")

    def tee(line: str) -> str:
        transcript.write(line)
        return on_line(line) if on_line else ""

    def kill() -> None:  # nothing the agent started may outlive the attempt
        below = descendants(proc.pid)  # found before the kill: orphans lose their parent
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        for pid in below:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    run = supervise(
        proc,
        Limits(timeout_s=timeout_s, output_bytes=OUTPUT_CAP_CHARS),
        kill,
        (stdin or "").encode(),
        on_line=tee,
        stop_at_cap=False,
    )
    if run.stderr.strip():
        transcript.note("stderr:")
        transcript.write(run.stderr if run.stderr.endswith("\n") else run.stderr + "\n")
    return Finished(run.exit_code, run.timed_out, run.stopped, run.stdout, run.stderr)


def descendants(root: int) -> list[int]:
    """The live processes below `root`, whatever group or session they moved to (Claude Code runs
    each Bash command in a session of its own, out of reach of a group kill); Linux /proc only."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            state, parent = stat.read_text().rsplit(")", 1)[1].split()[:2]
            if state != "Z":
                parents[int(stat.parent.name)] = int(parent)
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return sorted(found)


def describe(argv: list[str], prompt: str) -> str:
    """The command line for the transcript, the prompt shown by its length."""
    return shlex.join(f"<prompt: {len(prompt)} chars>" if a == prompt else a for a in argv)
