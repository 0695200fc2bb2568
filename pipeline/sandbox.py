"""Sandboxes run a graded test command in a prepared work tree, bounded in time, memory and output.

One protocol, small backends: `process` (a plain subprocess with resource limits, for trusted
patches) and `docker` (a fresh container per evaluation, no network). Which one runs is one
name in the tracking config; `auto` takes Docker when a daemon and the image are there.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import resource
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

OUTPUT_CAP_BYTES = 2 * 1024 * 1024
DEMO_IMAGE = "candlebench/demo-python:1"
CONTAINER_LABEL = "candlebench.sandbox"


class SandboxUnavailable(RuntimeError):
    """The requested sandbox backend cannot run on this machine."""


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 120.0
    memory_mb: int = 2048
    cpus: float = 1.0
    pids: int = 256
    output_bytes: int = OUTPUT_CAP_BYTES


@dataclass(frozen=True)
class RunResult:
    exit_code: int | None  # None when the run was killed
    output: str  # stdout and stderr interleaved, capped
    timed_out: bool
    duration_s: float
    truncated: bool


class Sandbox(Protocol):
    """Runs `command` (a bash script) with `workdir` as its working copy."""

    name: str
    trusted_only: bool  # True when it must not run untrusted patches

    def fingerprint(self) -> str: ...

    def run(self, workdir: Path, command: str, limits: Limits) -> RunResult: ...


def _read_capped(path: Path, cap: int) -> tuple[str, bool]:
    size = path.stat().st_size
    with path.open("rb") as handle:
        data = handle.read(cap)
    return data.decode("utf-8", errors="replace"), size > cap


class ProcessSandbox:
    """A plain subprocess in its own session with rlimits: for trusted patches only."""

    name = "process"
    trusted_only = True

    def fingerprint(self) -> str:
        import pytest

        text = f"process|{platform.python_version()}|pytest {pytest.__version__}|{sys.platform}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def run(self, workdir: Path, command: str, limits: Limits) -> RunResult:
        log = workdir.parent / f".{workdir.name}.log"

        def bound() -> None:
            memory = limits.memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
            resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024 * 1024,) * 2)
            cpu = int(limits.timeout_s) + 5
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))

        env = {
            "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(workdir),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONHASHSEED": "0",
            "LANG": "C.UTF-8",
        }
        started = time.monotonic()
        with log.open("wb") as out:
            proc = subprocess.Popen(
                ["bash", "-c", command],
                cwd=workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
                preexec_fn=bound,
            )
            timed_out = False
            try:
                proc.wait(timeout=limits.timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
            # Kill the whole session: nothing the tests started may outlive the evaluation.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        output, truncated = _read_capped(log, limits.output_bytes)
        log.unlink(missing_ok=True)
        return RunResult(
            exit_code=None if timed_out else proc.returncode,
            output=output,
            timed_out=timed_out,
            duration_s=time.monotonic() - started,
            truncated=truncated,
        )


class DockerSandbox:
    """A fresh, labelled container per evaluation: no network, bounded, removed in every path."""

    name = "docker"
    trusted_only = False

    def __init__(self, image: str = DEMO_IMAGE) -> None:
        import docker

        try:
            self.client = docker.from_env(timeout=30)
            self.client.ping()
        except Exception as err:  # docker raises several unrelated types here
            raise SandboxUnavailable(f"no Docker daemon reachable: {err}") from err
        try:
            self.image_id = self.client.images.get(image).id
        except docker.errors.ImageNotFound as err:
            raise SandboxUnavailable(
                f"Docker image {image} is not present; build it with `candlebench build-image`"
            ) from err
        self.image = image

    def fingerprint(self) -> str:
        return self.image_id.removeprefix("sha256:")[:16]

    def run(self, workdir: Path, command: str, limits: Limits) -> RunResult:
        import docker
        from docker.types import LogConfig

        started = time.monotonic()
        if os.getuid() == 0:
            # The container runs as uid 1000: hand it the scratch work tree, or it can neither
            # read a 0700 tree nor write into it. Never follow a patch's symlinks out of it.
            os.chown(workdir, 1000, 1000, follow_symlinks=False)
            for top, dirs, files in os.walk(workdir):
                for name in dirs + files:
                    os.chown(os.path.join(top, name), 1000, 1000, follow_symlinks=False)
        container = self.client.containers.create(
            self.image,
            ["bash", "-c", command],
            working_dir="/app",
            volumes={str(workdir): {"bind": "/app", "mode": "rw"}},
            network_disabled=True,
            mem_limit=f"{limits.memory_mb}m",
            memswap_limit=f"{limits.memory_mb}m",
            nano_cpus=int(limits.cpus * 1e9),
            pids_limit=limits.pids,
            read_only=True,
            tmpfs={"/tmp": "rw,size=256m"},
            user=f"{os.getuid()}:{os.getgid()}" if os.getuid() != 0 else "1000:1000",
            environment={"HOME": "/tmp", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0"},
            labels={CONTAINER_LABEL: "1"},
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            log_config=LogConfig(type="json-file", config={"max-size": "8m", "max-file": "1"}),
        )
        timed_out = False
        try:
            container.start()
            try:
                status = container.wait(timeout=limits.timeout_s)
                exit_code = status.get("StatusCode")
            except Exception:  # requests' ReadTimeout: the container ran past its time
                timed_out = True
                exit_code = None
                with contextlib.suppress(docker.errors.APIError):  # it may have just exited
                    container.kill()
            raw = b""
            for chunk in container.logs(stdout=True, stderr=True, stream=True, follow=False):
                raw += chunk
                if len(raw) > limits.output_bytes:
                    break
        finally:
            container.remove(force=True)
        truncated = len(raw) > limits.output_bytes
        return RunResult(
            exit_code=exit_code,
            output=raw[: limits.output_bytes].decode("utf-8", errors="replace"),
            timed_out=timed_out,
            duration_s=time.monotonic() - started,
            truncated=truncated,
        )


def open_sandbox(name: str) -> Sandbox:
    """`process`, `docker`, or `auto` (Docker when a daemon and the image are there)."""
    if name == "process":
        return ProcessSandbox()
    if name == "docker":
        return DockerSandbox()
    if name == "auto":
        try:
            return DockerSandbox()
        except SandboxUnavailable:
            return ProcessSandbox()
    raise ValueError(f"sandbox: unknown backend {name!r}; expected process, docker or auto")
