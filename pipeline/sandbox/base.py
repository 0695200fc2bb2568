"""What every sandbox backend shares: limits, the result of a run, the protocol, errors."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

OUTPUT_CAP_BYTES = 8 * 1024 * 1024

DEMO_IMAGE = "candlebench/demo-python:1"

SANDBOX_UID = 1000  # the user of candlebench's images; the bubblewrap user when not run as root

WORKSPACE = "/workspace"


class SandboxUnavailable(RuntimeError):
    """The requested sandbox backend, or the image a task needs, cannot run on this machine."""


class ImageUnavailable(SandboxUnavailable):
    """A task's Docker image is neither present locally nor pullable from a registry."""


class SandboxLost(SandboxUnavailable):
    """The sandbox stopped answering mid-run (its Docker daemon died or restarted): the run's
    outcome is unknown, the grader's failure, never the patch's."""


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 120.0
    memory_mb: int = 2048
    cpus: float = 1.0
    pids: int = 256
    output_bytes: int = OUTPUT_CAP_BYTES  # stdout + stderr; past it the run is stopped
    file_mb: int = 512  # the largest file a run may write
    tmp_mb: int = 256  # the private /tmp


@dataclass(frozen=True)
class RunResult:
    exit_code: int | None  # None when the run was killed (timeout or output cap)
    output: str  # stdout and stderr interleaved, capped
    timed_out: bool
    duration_s: float
    truncated: bool  # the output passed the cap and the run was stopped there
    stdout: str = ""
    stderr: str = ""
    oom_killed: bool = False
    stopped: str = ""  # why a watcher of its output stopped it ("" when none did)


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do; callers ask this, never which class a sandbox is."""

    isolates: bool  # safe for untrusted patches: no network, no host writes outside the work tree
    task_images: bool  # runs a task's own image (SWE-Bench-Pro's), not only the host's toolchain
    app_mount: bool  # the work tree is at /app, as run scripts expect


class Sandbox(Protocol):
    """Runs `command` (a bash script) with `workdir` as its working copy."""

    name: str
    capabilities: Capabilities

    def fingerprint(self, image: str | None = None) -> str: ...

    def image_digest(self, image: str | None = None) -> str:
        """The full id of the image runs use ("" for backends on the host's toolchain)."""
        ...

    def run(
        self,
        workdir: Path,
        command: str,
        limits: Limits,
        *,
        image: str | None = None,
        workspace: Path | None = None,
        readonly: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        stdin: bytes = b"",
    ) -> RunResult: ...


def base_env(workspace: str, extra: Mapping[str, str] | None) -> dict[str, str]:
    env = {
        "HOME": "/tmp",
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "PYTHONNOUSERSITE": "1",
        "CB_WORKSPACE": workspace,
    }
    env.update(extra or {})
    return env


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]
