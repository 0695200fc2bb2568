"""Sandboxes run a command in a prepared work tree, bounded in time, memory, processes and output.

One protocol (`Sandbox`), one file per backend, chosen by name (`sandbox:` in the tracking
config) from `BACKENDS`; adding a backend is a new file and one line there.

- `docker`: a fresh, labelled container per run (`docker.py`), through the one Docker gateway
  (`daemon.py`, `containers.py`).
- `bubblewrap`: namespaces, a read-only system, a private /tmp, for machines without Docker.
- `process`: a plain subprocess with rlimits, for trusted patches only.

In docker and bubblewrap the work tree is at /app, an optional harness folder at /workspace
(read-only; `$CB_WORKSPACE` names it in every backend) and the graded test files are mounted
read-only. Every backend's child is watched by the one supervisor (`supervisor.py`).
"""

from __future__ import annotations

import contextlib
import importlib

from pipeline.sandbox.base import (
    DEMO_IMAGE,
    OUTPUT_CAP_BYTES,
    SANDBOX_UID,
    WORKSPACE,
    Capabilities,
    ImageUnavailable,
    Limits,
    RunResult,
    Sandbox,
    SandboxLost,
    SandboxUnavailable,
)

BACKENDS = {  # name -> "module:class"; `auto` tries them in this order
    "docker": "pipeline.sandbox.docker:DockerSandbox",
    "bubblewrap": "pipeline.sandbox.bubblewrap:BubblewrapSandbox",
    "process": "pipeline.sandbox.process:ProcessSandbox",
}

__all__ = [
    "BACKENDS",
    "DEMO_IMAGE",
    "OUTPUT_CAP_BYTES",
    "SANDBOX_UID",
    "WORKSPACE",
    "Capabilities",
    "ImageUnavailable",
    "Limits",
    "RunResult",
    "Sandbox",
    "SandboxLost",
    "SandboxUnavailable",
    "backend",
    "names",
    "open_sandbox",
]


def names() -> tuple[str, ...]:
    """The names a config may give: every registered backend, and `auto`."""
    return (*BACKENDS, "auto")


def backend(name: str) -> type:
    """The class of a named backend (imported on first use: docker-py only when Docker is asked)."""
    if name not in BACKENDS:
        raise ValueError(f"sandbox: unknown backend {name!r}; expected one of {', '.join(names())}")
    module, _, cls = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def open_sandbox(name: str, docker_host: str | None = None) -> Sandbox:
    """A named backend, or `auto`: the first of BACKENDS that can run here.

    `docker_host` (the config's `docker_host`, else $DOCKER_HOST) is the daemon the docker
    backend talks to; the other backends run on this machine.
    """

    def make(candidate: str) -> Sandbox:
        cls = backend(candidate)
        return cls(docker_host=docker_host) if candidate == "docker" and docker_host else cls()

    if name != "auto":
        return make(name)
    *tried, last = BACKENDS
    for candidate in tried:
        with contextlib.suppress(SandboxUnavailable):
            sandbox = make(candidate)
            sandbox.fingerprint()  # its default image too: `auto` must run the demo suite as well
            return sandbox
    return backend(last)()
