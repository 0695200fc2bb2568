"""The one process supervisor: feed stdin, read stdout and stderr with a byte cap and a deadline,
kill what is left. Sandboxes and the agents' command runs both go through it."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import selectors
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.sandbox.base import Limits, RunResult

_DRAIN_S = 1.0  # after the command exits, how long leftovers holding its pipes are waited for


@dataclass
class Capture:
    """Output of a run in arrival order, stopped at a byte cap."""

    cap: int
    merged: bytearray = field(default_factory=bytearray)
    streams: dict[str, bytearray] = field(
        default_factory=lambda: {"stdout": bytearray(), "stderr": bytearray()}
    )
    truncated: bool = False

    def add(self, stream: str, chunk: bytes) -> bool:
        """Keep `chunk`; False once the cap is passed (the run must then be stopped)."""
        room = self.cap - len(self.merged)
        if len(chunk) > room:
            chunk, self.truncated = chunk[: max(room, 0)], True
        self.merged += chunk
        self.streams[stream] += chunk
        return not self.truncated

    def result(
        self,
        exit_code: int | None,
        timed_out: bool,
        started: float,
        oom_killed: bool = False,
        stop_at_cap: bool = True,
    ) -> RunResult:
        text = {k: v.decode("utf-8", errors="replace") for k, v in self.streams.items()}
        return RunResult(
            exit_code=None if (timed_out or (stop_at_cap and self.truncated)) else exit_code,
            output=self.merged.decode("utf-8", errors="replace"),
            timed_out=timed_out,
            duration_s=time.monotonic() - started,
            truncated=self.truncated,
            stdout=text["stdout"],
            stderr=text["stderr"],
            oom_killed=oom_killed,
        )


class Lines:
    """Complete stdout lines, as they arrive, for a callback that may stop the run."""

    def __init__(self, on_line: Callable[[str], str]) -> None:
        self.on_line, self.partial, self.stopped = on_line, b"", ""

    def feed(self, chunk: bytes) -> str:
        """Hand over every complete line of `chunk`; the first stop reason the callback gives."""
        *complete, self.partial = (self.partial + chunk).split(b"\n")
        for raw in complete:
            if reason := self.on_line(raw.decode("utf-8", errors="replace") + "\n"):
                self.stopped = reason
                break
        return self.stopped

    def flush(self) -> None:
        if self.partial and not self.stopped:
            self.stopped = self.on_line(self.partial.decode("utf-8", errors="replace"))


def supervise(
    proc: subprocess.Popen,
    limits: Limits,
    kill: Callable[[], None],
    stdin: bytes,
    on_line: Callable[[str], str] | None = None,
    stop_at_cap: bool = True,
) -> RunResult:
    """Feed stdin, then read the child's pipes until they close, its time is up or the output cap.

    `on_line` sees each stdout line as it comes (a transcript tee, a budget watch) and may return
    a reason to stop the run. With `stop_at_cap` off, output past the cap is dropped, not fatal.
    """
    started = time.monotonic()

    def feed() -> None:  # a thread: a large prompt must not block on a child that reads late
        with contextlib.suppress(BrokenPipeError, OSError):
            proc.stdin.write(stdin)
        with contextlib.suppress(BrokenPipeError, OSError):
            proc.stdin.close()

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    deadline = started + limits.timeout_s
    capture = Capture(limits.output_bytes)
    lines = Lines(on_line) if on_line else None
    names = {proc.stdout.fileno(): "stdout", proc.stderr.fileno(): "stderr"}
    timed_out, exited_at, stopped = False, None, ""
    with selectors.DefaultSelector() as selector:
        for fd in names:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map() and not stopped and not (stop_at_cap and capture.truncated):
            now = time.monotonic()
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            if exited_at is None and now >= deadline:
                timed_out = True
                break
            if exited_at is not None and now - exited_at > _DRAIN_S:
                break  # a leftover process holds the pipes open: it is killed below
            for key, _ in selector.select(timeout=min(0.1, max(deadline - now, 0.001))):
                chunk = os.read(key.fd, 1 << 16)
                if not chunk:
                    selector.unregister(key.fd)
                    continue
                if lines and names[key.fd] == "stdout" and (stopped := lines.feed(chunk)):
                    break
                if not capture.add(names[key.fd], chunk) and stop_at_cap:
                    break
    if lines and not stopped:
        lines.flush()
        stopped = lines.stopped
    exit_code = None
    if not (timed_out or stopped or (stop_at_cap and capture.truncated)):  # the command may still run
        try:
            exit_code = proc.wait(timeout=max(deadline - time.monotonic(), 0.001))
        except subprocess.TimeoutExpired:
            timed_out = True
    kill()  # whatever it left behind
    proc.wait()
    feeder.join(timeout=5)
    proc.stdout.close()
    proc.stderr.close()
    result = capture.result(exit_code, timed_out, started, stop_at_cap=stop_at_cap)
    return dataclasses.replace(result, stopped=stopped) if stopped else result


def bounded(command: str, limits: Limits, processes: bool = False, cgroup: bool = False) -> list[str]:
    """argv running `command` under rlimits and its own deadline.

    Without a cgroup (bubblewrap, process), memory is bounded per process by its address space
    and CPU by CPU time; in a container the cgroup does both, and an address-space limit would
    break runtimes that reserve large virtual ranges (V8, the JVM). The deadline (`timeout`, a
    little after ours) ends the run even if candlebench itself is killed meanwhile.
    """
    values = ["-c 0", f"-f {limits.file_mb * 1024}"]
    if not cgroup:
        values += [f"-v {limits.memory_mb * 1024}", f"-t {int(limits.timeout_s) * (os.cpu_count() or 1) + 5}"]
    if processes:  # counted per user (per user namespace): only meaningful for a dedicated uid
        values.append(f"-u {limits.pids}")
    script = f"ulimit {' '.join(values)} || exit 125\n{command}"
    return ["timeout", "-s", "KILL", str(int(limits.timeout_s) + 10), "bash", "-c", script]


def hand_over(paths: Sequence[Path], uid: int) -> None:
    """Give the sandbox user the trees it works in; never follow a patch's symlinks out of them.

    Entries it owns already are left alone: on an overlay work tree a chown copies the file up.
    """
    for root in paths:
        for path in _entries(root):
            if os.lstat(path).st_uid != uid:
                os.chown(path, uid, uid, follow_symlinks=False)


def _entries(root: Path):
    yield str(root)
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            yield os.path.join(top, name)
