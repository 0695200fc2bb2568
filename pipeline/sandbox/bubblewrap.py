"""`bubblewrap`: new namespaces (no network), a read-only system, a private /tmp, rlimits and an
unprivileged uid, for machines without Docker."""

from __future__ import annotations

import contextlib
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from pipeline.sandbox.base import (
    SANDBOX_UID,
    WORKSPACE,
    Capabilities,
    Limits,
    RunResult,
    SandboxUnavailable,
    base_env,
    digest,
)
from pipeline.sandbox.supervisor import bounded, hand_over, supervise

_BWRAP_UIDS = (200_000, 265_000)  # as root, each bubblewrap run gets its own unused host uid


def _host_python_paths() -> list[Path]:
    """Folders the interpreter running candlebench needs, outside the system binds."""
    paths = []
    for prefix in (sys.base_prefix, sys.prefix, Path(sys.executable).resolve().parent.parent):
        path = Path(prefix).resolve()
        if not any(path.is_relative_to(p) for p in ("/usr", "/etc")) and path not in paths:
            paths.append(path)
    return [p for p in paths if not any(p != q and p.is_relative_to(q) for q in paths)]


class BubblewrapSandbox:
    """bwrap: new namespaces (no network), read-only system, private /tmp, rlimits, unprivileged uid.

    As root, each run gets its own otherwise unused host uid (bwrap sets up the mounts as root,
    then `setpriv` drops to that uid with no capabilities), so the process limit counts only that
    run. Otherwise bwrap runs unprivileged in a new user namespace, where the limit is per namespace.
    """

    name = "bubblewrap"
    capabilities = Capabilities(isolates=True, task_images=False, app_mount=True)

    def __init__(self) -> None:
        self.bwrap = shutil.which("bwrap")
        if self.bwrap is None:
            raise SandboxUnavailable("bubblewrap is not installed (apt-get install bubblewrap)")
        self.as_root = os.geteuid() == 0
        if self.as_root and shutil.which("setpriv") is None:
            raise SandboxUnavailable("setpriv (util-linux) is needed to run bubblewrap as root")
        self.python_paths = _host_python_paths()
        probe = self.run(Path("/"), "true", Limits(timeout_s=30))
        if probe.exit_code != 0:
            raise SandboxUnavailable(f"bubblewrap cannot start a sandbox here: {probe.output.strip()}")

    def image_digest(self, image: str | None = None) -> str:
        return ""

    def fingerprint(self, image: str | None = None) -> str:
        import pytest

        version = subprocess.run([self.bwrap, "--version"], capture_output=True, text=True).stdout
        return digest(
            f"bubblewrap|{version.strip()}|{platform.python_version()}|"
            f"pytest {pytest.__version__}|{platform.machine()}"
        )

    def _system_binds(self) -> list[str]:
        args = ["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
        for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            path = Path("/") / name
            if path.is_symlink():
                args += ["--symlink", os.readlink(path), str(path)]
            elif path.is_dir():
                args += ["--ro-bind", str(path), str(path)]
        return args

    def _python_binds(self) -> list[str]:
        """The interpreter and its environment; mounted after /tmp, which may hold a venv."""
        args = []
        for path in self.python_paths:
            for parent in reversed(path.parents[:-1]):  # bwrap would copy a 0700 parent's mode
                args += ["--perms", "0755", "--dir", str(parent)]
            args += ["--ro-bind", str(path), str(path)]
        return args

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
            raise SandboxUnavailable(f"the bubblewrap sandbox cannot run image {image}; use docker")
        workdir = Path(workdir).resolve()
        args = [
            self.bwrap,
            "--unshare-pid",
            "--unshare-net",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--die-with-parent",
            "--new-session",
            *self._system_binds(),
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--size",
            str(limits.tmp_mb << 20),
            "--perms",
            "1777",
            "--tmpfs",
            "/tmp",
            *self._python_binds(),
        ]
        if workdir != Path("/"):
            args += ["--bind", str(workdir), "/app"]
            if workspace:
                args += ["--ro-bind", str(Path(workspace).resolve()), WORKSPACE]
            for rel in readonly:
                if (workdir / rel).exists() and not (workdir / rel).is_symlink():
                    args += ["--ro-bind", str(workdir / rel), f"/app/{rel}"]
            args += ["--chdir", "/app"]
        if self.as_root:
            uid = random.randrange(*_BWRAP_UIDS)
            if workdir != Path("/"):
                hand_over([workdir], uid)
            drop = [
                "setpriv",
                f"--reuid={uid}",
                f"--regid={uid}",
                "--clear-groups",
                "--inh-caps=-all",
                "--bounding-set=-all",
                "--no-new-privs",
                "--",
            ]
            args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", *drop]
        else:
            args[1:1] = [
                "--unshare-user",
                "--uid",
                str(SANDBOX_UID),
                "--gid",
                str(SANDBOX_UID),
                "--disable-userns",
            ]
        environment = base_env(WORKSPACE, env)
        environment["PATH"] = f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin"
        args += bounded(command, limits, processes=True)
        proc = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=environment,
            start_new_session=True,
        )

        def kill() -> None:  # bwrap's pid-1 reaper dies with it (--die-with-parent), and the pid ns
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        return supervise(proc, limits, kill, stdin)
