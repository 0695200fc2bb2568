"""`process`: a plain subprocess in its own session with rlimits, for trusted patches only."""

from __future__ import annotations

import contextlib
import os
import platform
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from pipeline.sandbox.base import Capabilities, Limits, RunResult, SandboxUnavailable, base_env, digest
from pipeline.sandbox.supervisor import bounded, supervise


class ProcessSandbox:
    """A plain subprocess in its own session with rlimits: for trusted patches only."""

    name = "process"
    capabilities = Capabilities(isolates=False, task_images=False, app_mount=False)

    def image_digest(self, image: str | None = None) -> str:
        return ""

    def fingerprint(self, image: str | None = None) -> str:
        import pytest

        return digest(f"process|{platform.python_version()}|pytest {pytest.__version__}|{sys.platform}")

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
    ) -> RunResult:
        if image:
            raise SandboxUnavailable(f"the process sandbox cannot run image {image}; use docker")
        environment = base_env(str(workspace or workdir), env)
        environment.update(
            HOME=str(workdir), PATH=f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin"
        )
        proc = subprocess.Popen(
            bounded(command, limits),
            cwd=workdir,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=environment,
            start_new_session=True,
        )

        def kill() -> None:  # the whole session: nothing the command started may outlive it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        return supervise(proc, limits, kill, stdin)
