"""Sandboxes run a command in a prepared work tree, bounded in time, memory, processes and output.

One protocol, three backends; which one runs is one name (`sandbox:` in the tracking config):

- `docker`: a fresh, labelled container per run: no network, cgroup limits on memory, CPU and
  processes, uid 1000, read-only root with a private /tmp, killed at the timeout and removed in
  every path. Containers orphaned by a killed process are reaped when the next DockerSandbox
  starts. All Docker access of candlebench goes through `DockerDaemon` (docker-py).
- `bubblewrap`: for machines without Docker: new pid, network, ipc and mount namespaces,
  read-only system binds, a private size-limited /tmp, rlimits, an unprivileged uid; everything
  dies with the namespace's first process.
- `process`: a plain subprocess with rlimits in its own session, for trusted patches only.

In docker and bubblewrap the work tree is at /app, an optional harness folder at /workspace
(read-only; `$CB_WORKSPACE` names it in every backend) and the graded test files are mounted
read-only. `RunResult.output` is stdout and stderr interleaved; `stdout`/`stderr` are apart.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import platform
import random
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Protocol

OUTPUT_CAP_BYTES = 8 * 1024 * 1024
DEMO_IMAGE = "candlebench/demo-python:1"
CONTAINER_LABEL = "candlebench.sandbox"
OWNER_LABEL = "candlebench.owner"  # host:pid:start-time of the process that created it
DEADLINE_LABEL = "candlebench.deadline"  # unix time after which it is an orphan whoever owns it
SANDBOX_UID = 1000  # the user of candlebench's images; the bubblewrap user when not run as root
WORKSPACE = "/workspace"
_DRAIN_S = 1.0  # after the command exits, how long leftovers holding its pipes are waited for
_BWRAP_UIDS = (200_000, 265_000)  # as root, each bubblewrap run gets its own unused host uid


class SandboxUnavailable(RuntimeError):
    """The requested sandbox backend, or the image a task needs, cannot run on this machine."""


class ImageUnavailable(SandboxUnavailable):
    """A task's Docker image is neither present locally nor pullable from a registry."""


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


class Sandbox(Protocol):
    """Runs `command` (a bash script) with `workdir` as its working copy."""

    name: str
    trusted_only: bool  # True when it must not run untrusted patches

    def fingerprint(self, image: str | None = None) -> str: ...

    def run(
        self, workdir: Path, command: str, limits: Limits, *, image: str | None = None,
        workspace: Path | None = None, readonly: Sequence[str] = (),
        env: Mapping[str, str] | None = None, stdin: bytes = b"",
    ) -> RunResult: ...


@dataclass
class _Capture:
    """Output of a run in arrival order, stopped at a byte cap."""

    cap: int
    merged: bytearray = field(default_factory=bytearray)
    streams: dict[str, bytearray] = field(default_factory=lambda: {"stdout": bytearray(),
                                                                   "stderr": bytearray()})
    truncated: bool = False

    def add(self, stream: str, chunk: bytes) -> bool:
        """Keep `chunk`; False once the cap is passed (the run must then be stopped)."""
        room = self.cap - len(self.merged)
        if len(chunk) > room:
            chunk, self.truncated = chunk[:max(room, 0)], True
        self.merged += chunk
        self.streams[stream] += chunk
        return not self.truncated

    def result(self, exit_code: int | None, timed_out: bool, started: float,
               oom_killed: bool = False) -> RunResult:
        text = {k: v.decode("utf-8", errors="replace") for k, v in self.streams.items()}
        return RunResult(
            exit_code=None if (timed_out or self.truncated) else exit_code,
            output=self.merged.decode("utf-8", errors="replace"), timed_out=timed_out,
            duration_s=time.monotonic() - started, truncated=self.truncated,
            stdout=text["stdout"], stderr=text["stderr"], oom_killed=oom_killed,
        )


def _supervise(proc: subprocess.Popen, limits: Limits, kill: Callable[[], None], stdin: bytes
               ) -> RunResult:
    """Feed stdin, then read the child's pipes until they close, its time is up or the output cap."""
    started = time.monotonic()
    with contextlib.suppress(BrokenPipeError):
        proc.stdin.write(stdin)  # a line or two: fits in the pipe buffer, never blocks
    with contextlib.suppress(BrokenPipeError):
        proc.stdin.close()
    deadline = started + limits.timeout_s
    capture = _Capture(limits.output_bytes)
    names = {proc.stdout.fileno(): "stdout", proc.stderr.fileno(): "stderr"}
    timed_out, exited_at = False, None
    with selectors.DefaultSelector() as selector:
        for fd in names:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map() and not capture.truncated:
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
                elif not capture.add(names[key.fd], chunk):
                    break
    exit_code = None
    if not (timed_out or capture.truncated):  # pipes closed: the command may still be running
        try:
            exit_code = proc.wait(timeout=max(deadline - time.monotonic(), 0.001))
        except subprocess.TimeoutExpired:
            timed_out = True
    kill()  # whatever it left behind
    proc.wait()
    proc.stdout.close()
    proc.stderr.close()
    return capture.result(exit_code, timed_out, started)


def _bounded(command: str, limits: Limits, processes: bool = False, cgroup: bool = False) -> list[str]:
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


def _hand_over(paths: Sequence[Path], uid: int) -> None:
    """Give the sandbox user the trees it works in; never follow a patch's symlinks out of them."""
    for root in paths:
        os.chown(root, uid, uid, follow_symlinks=False)
        for top, dirs, files in os.walk(root):
            for name in dirs + files:
                os.chown(os.path.join(top, name), uid, uid, follow_symlinks=False)


def _base_env(workspace: str, extra: Mapping[str, str] | None) -> dict[str, str]:
    env = {"HOME": "/tmp", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0",
           "PYTHONNOUSERSITE": "1", "CB_WORKSPACE": workspace}
    env.update(extra or {})
    return env


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class ProcessSandbox:
    """A plain subprocess in its own session with rlimits: for trusted patches only."""

    name = "process"
    trusted_only = True

    def fingerprint(self, image: str | None = None) -> str:
        import pytest

        return _digest(f"process|{platform.python_version()}|pytest {pytest.__version__}|{sys.platform}")

    def run(
        self, workdir: Path, command: str, limits: Limits, *, image: str | None = None,
        workspace: Path | None = None, readonly: Sequence[str] = (),
        env: Mapping[str, str] | None = None, stdin: bytes = b"",
    ) -> RunResult:
        if image:
            raise SandboxUnavailable(f"the process sandbox cannot run image {image}; use docker")
        environment = _base_env(str(workspace or workdir), env)
        environment.update(HOME=str(workdir),
                           PATH=f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin")
        proc = subprocess.Popen(
            _bounded(command, limits), cwd=workdir, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment, start_new_session=True,
        )

        def kill() -> None:  # the whole session: nothing the command started may outlive it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        return _supervise(proc, limits, kill, stdin)


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
    trusted_only = False

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

    def fingerprint(self, image: str | None = None) -> str:
        import pytest

        version = subprocess.run([self.bwrap, "--version"], capture_output=True, text=True).stdout
        return _digest(f"bubblewrap|{version.strip()}|{platform.python_version()}|"
                       f"pytest {pytest.__version__}|{platform.machine()}")

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
        self, workdir: Path, command: str, limits: Limits, *, image: str | None = None,
        workspace: Path | None = None, readonly: Sequence[str] = (),
        env: Mapping[str, str] | None = None, stdin: bytes = b"",
    ) -> RunResult:
        if image:
            raise SandboxUnavailable(f"the bubblewrap sandbox cannot run image {image}; use docker")
        workdir = Path(workdir).resolve()
        args = [self.bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
                "--unshare-cgroup-try", "--die-with-parent", "--new-session",
                *self._system_binds(), "--proc", "/proc", "--dev", "/dev",
                "--size", str(limits.tmp_mb << 20), "--perms", "1777", "--tmpfs", "/tmp",
                *self._python_binds()]
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
                _hand_over([workdir], uid)
            drop = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                    "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
            args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", *drop]
        else:
            args[1:1] = ["--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
                         "--disable-userns"]
        environment = _base_env(WORKSPACE, env)
        environment["PATH"] = f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin"
        args += _bounded(command, limits, processes=True)
        proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=environment, start_new_session=True)

        def kill() -> None:  # bwrap's pid-1 reaper dies with it (--die-with-parent), and the pid ns
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        return _supervise(proc, limits, kill, stdin)


def _start_time(pid: int) -> str | None:
    """Boot-relative start time of a process (tells a live pid from a reused one), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


_OWNER = f"{socket.gethostname()}:{os.getpid()}:{_start_time(os.getpid())}"


class DockerDaemon:
    """The one place candlebench talks to Docker (docker-py): images, sandbox containers, orphans.

    dagster-docker's Pipes client is not used for grading containers: it waits without a timeout,
    only stops containers, reads the whole log without a cap, and takes its structured results
    from the container's output, which a patch under test can forge. Verdicts are parsed here,
    outside the container, and reach Dagster as the grading asset's metadata.
    """

    def __init__(self, timeout: float = 60) -> None:
        import docker

        self.errors = docker.errors
        try:
            self.client = docker.from_env(timeout=timeout)
            self.client.ping()
        except Exception as err:  # docker raises several unrelated types here
            raise SandboxUnavailable(f"no Docker daemon reachable: {err}") from err
        self._live: set[str] = set()
        self._lock = threading.Lock()
        atexit.register(self._remove_live)

    # images
    def image_id(self, tag: str) -> str | None:
        try:
            return self.client.images.get(tag).id
        except self.errors.ImageNotFound:
            return None

    def ensure_image(self, tag: str, pull: bool = True) -> str:
        """The image's id: present locally, else pulled; otherwise an error saying how to load it."""
        if found := self.image_id(tag):
            return found
        reason = "pulling is off"
        if pull:
            try:
                self.client.images.pull(tag)
                if found := self.image_id(tag):
                    return found
            except Exception as err:  # no registry, no such tag, auth: all the same to the user
                reason = f"pulling it failed: {str(err).strip()[:300]}"
        raise ImageUnavailable(
            f"Docker image {tag} is not present on this machine and {reason}. Load it from a "
            f"saved tarball with `docker load -i <file>.tar` (saved where a registry is reachable "
            f"with `docker save -o <file>.tar {tag}`), then retry."
        )

    def import_rootfs(self, tar_stream, tag: str, changes: Sequence[str]) -> str:
        """`docker import` a root file system tarball (a readable stream) as `tag`."""
        repository, _, version = tag.rpartition(":")
        self.client.api.import_image_from_stream(tar_stream, repository=repository, tag=version,
                                                 changes=list(changes))
        found = self.image_id(tag)
        if found is None:
            raise RuntimeError(f"docker import reported success but {tag} is missing")
        return found

    def remove_image(self, tag: str, force: bool = True) -> None:
        with contextlib.suppress(self.errors.ImageNotFound, self.errors.APIError):
            self.client.images.remove(tag, force=force)

    def image_size(self, tag: str) -> int:
        return int(self.client.images.get(tag).attrs.get("Size", 0))

    def image_config(self, image: str) -> dict:
        """The image's config as Docker stores it (Env, Cmd, Entrypoint, WorkingDir, Labels)."""
        return self.client.api.inspect_image(image).get("Config") or {}

    def images_labelled(self, labels: Mapping[str, str]) -> list[str]:
        """Ids of local images, intermediate ones included, that carry every one of `labels`."""
        wanted = {"label": [f"{key}={value}" for key, value in labels.items()]}
        return [image.id for image in self.client.images.list(all=True, filters=wanted)]

    def tag_image(self, image: str, tag: str) -> None:
        repository, _, version = tag.rpartition(":")
        self.client.api.tag(image, repository, version, force=True)

    def commit_step(
        self, image: str, argv: Sequence[str], config: Mapping, mounts: Mapping[str, str],
        timeout_s: float, on_output: Callable[[bytes], None],
    ) -> tuple[int | None, str | None]:
        """One image-build step: `argv` as the image's user on the default network, committed with
        `config` if it exits 0; (exit code or None at the timeout, new image id or None).

        The container carries no labels and its environment is `config`'s: Docker merges both
        into the committed image. `mounts` (host folder -> container path) are read-only and
        never committed; `argv` may be empty to commit `config` alone.
        """
        from docker.types import Mount

        binds = [Mount(target, source, type="bind", read_only=True) for source, target in mounts.items()]
        container = self.client.api.create_container(
            image, command=list(argv[1:]) or None, entrypoint=list(argv[:1]) or ["true"],
            environment=list(config.get("Env") or []), working_dir=config.get("WorkingDir") or None,
            host_config=self.client.api.create_host_config(mounts=binds),
        )["Id"]
        try:
            exit_code = 0
            if argv:
                self.client.api.start(container)
                for chunk in self.client.api.logs(container, stream=True, follow=True):
                    on_output(chunk)
                try:
                    exit_code = self.client.api.wait(container, timeout=timeout_s).get("StatusCode")
                except Exception:  # a read timeout: the step ran past its time
                    with contextlib.suppress(Exception):
                        self.client.api.kill(container)
                    return None, None
            if exit_code != 0:
                return exit_code, None
            return 0, self.client.api.commit(container, conf=dict(config))["Id"]
        finally:
            with contextlib.suppress(self.errors.NotFound):
                self.client.api.remove_container(container, force=True, v=True)

    def run_container(
        self, image: str, command: Sequence[str], *, entrypoint: Sequence[str] | None = None,
        mounts: Mapping[str, str] = MappingProxyType({}), network: bool = False, timeout_s: float = 3600,
    ) -> RunResult:
        """A container as its image defines it (the image's user, a writable root), for harnesses
        that must run exactly so (SWE-Bench-Pro's own); `mounts` (host folder -> path) are
        writable. Labelled and removed like sandbox containers; output is capped."""
        started = time.monotonic()
        container = self._create(
            image, list(command), labels={}, timeout_s=timeout_s, detach=True,
            entrypoint=list(entrypoint) if entrypoint is not None else None,
            volumes={source: {"bind": target, "mode": "rw"} for source, target in mounts.items()},
            network_mode=None if network else "none",  # as `docker run --network none`: with /etc/hosts
        )
        try:
            container.start()
            timed_out, exit_code = False, None
            try:
                exit_code = container.wait(timeout=timeout_s).get("StatusCode")
            except Exception:  # a read timeout: it ran past its time
                timed_out = True
                self._kill(container)
            capture = _Capture(OUTPUT_CAP_BYTES)
            capture.add("stdout", container.logs(stdout=True, stderr=False))
            capture.add("stderr", container.logs(stdout=False, stderr=True))
        finally:
            self._remove(container)
        return capture.result(exit_code, timed_out, started)

    def export_dir(self, image: str, path: str, dest: Path) -> None:
        """Copy folder `path` of `image` to `dest` (e.g. a SWE-Bench-Pro image's /app)."""
        container = self._create(image, ["true"], labels={}, timeout_s=600)
        try:
            stream, _ = container.get_archive(path)
            with tempfile.SpooledTemporaryFile(max_size=64 << 20) as spool:
                for chunk in stream:
                    spool.write(chunk)
                spool.seek(0)
                dest.mkdir(parents=True, exist_ok=True)
                with tarfile.open(fileobj=spool) as tar:
                    prefix = Path(path).name + "/"
                    members = []
                    for member in tar.getmembers():
                        if member.name == Path(path).name:
                            continue
                        member.name = member.name.removeprefix(prefix)
                        members.append(member)
                    tar.extractall(dest, members=members, filter="tar")
        finally:
            self._remove(container)

    # containers
    def _create(self, image: str, command: list[str], labels: dict[str, str], timeout_s: float,
                **options):
        labels = {CONTAINER_LABEL: "1", OWNER_LABEL: _OWNER,
                  DEADLINE_LABEL: str(int(time.time() + timeout_s + 120)), **labels}
        container = self.client.containers.create(image, command, labels=labels, **options)
        with self._lock:
            self._live.add(container.id)
        return container

    def _remove(self, container) -> None:
        with contextlib.suppress(self.errors.NotFound):
            container.remove(force=True, v=True)
        with self._lock:
            self._live.discard(container.id)

    def _remove_live(self) -> None:
        for container_id in list(self._live):
            with contextlib.suppress(Exception):
                self.client.api.remove_container(container_id, force=True, v=True)

    def reap_orphans(self) -> list[str]:
        """Remove sandbox containers whose creating process is gone or whose deadline has passed."""
        host = socket.gethostname()
        removed = []
        for container in self.client.containers.list(all=True, filters={"label": CONTAINER_LABEL}):
            labels = container.labels
            owner_host, _, rest = labels.get(OWNER_LABEL, "::").partition(":")
            pid, _, started = rest.partition(":")
            dead_owner = owner_host == host and (not pid.isdigit() or _start_time(int(pid)) != started)
            overdue = time.time() > float(labels.get(DEADLINE_LABEL, "0") or 0)
            if dead_owner or overdue:
                with contextlib.suppress(self.errors.NotFound, self.errors.APIError):
                    container.remove(force=True, v=True)
                    removed.append(container.id)
        return removed

    def run(
        self, image: str, command: str, limits: Limits, volumes: dict[str, dict],
        env: Mapping[str, str], user: str, stdin: bytes = b"",
    ) -> RunResult:
        """One sandbox container: created, attached, started, waited for with a deadline, removed."""
        import requests
        from docker.types import LogConfig, Ulimit

        started = time.monotonic()
        capture = _Capture(limits.output_bytes)
        container = self._create(
            image, _bounded(command, limits, cgroup=True), labels={}, timeout_s=limits.timeout_s,
            stdin_open=bool(stdin), detach=not stdin,  # docker-py: StdinOnce only when not detached
            working_dir="/app", volumes=volumes, network_mode="none", network_disabled=True,
            mem_limit=f"{limits.memory_mb}m", memswap_limit=f"{limits.memory_mb}m",
            nano_cpus=int(limits.cpus * 1e9), pids_limit=limits.pids, read_only=True,
            tmpfs={"/tmp": f"rw,size={limits.tmp_mb}m,mode=1777"}, user=user,
            environment=dict(env), cap_drop=["ALL"], security_opt=["no-new-privileges"],
            ulimits=[Ulimit(name="fsize", soft=limits.file_mb << 20, hard=limits.file_mb << 20),
                     Ulimit(name="core", soft=0, hard=0)],
            log_config=LogConfig(type="json-file", config={"max-size": "1m", "max-file": "1"}),
        )
        try:
            # Attached before it starts, so nothing is missed without replaying the log.
            stream = self.client.api.attach(container.id, stdout=True, stderr=True, stream=True,
                                            logs=False, demux=True)

            def read() -> None:
                killer = None
                with contextlib.suppress(Exception):  # the stream breaks when the container dies
                    for out, err in stream:
                        if killer is None and ((out and not capture.add("stdout", out)) or (
                                err and not capture.add("stderr", err))):
                            # Past the cap: kill, but keep draining, or dockerd blocks the kill.
                            killer = threading.Thread(target=self._kill, args=(container,), daemon=True)
                            killer.start()

            feed = self.client.api.attach_socket(container.id, params={"stdin": 1, "stream": 1}) \
                if stdin else None
            reader = threading.Thread(target=read, daemon=True)
            reader.start()
            container.start()
            if feed is not None:  # then end stdin, so the container sees EOF after `stdin`
                raw = getattr(feed, "_sock", feed)
                with contextlib.suppress(OSError):
                    raw.sendall(stdin)
                    raw.shutdown(socket.SHUT_WR)
                feed.close()
            timed_out, exit_code = False, None
            try:
                remaining = max(limits.timeout_s - (time.monotonic() - started), 0.1)
                exit_code = self.client.api.wait(container.id, timeout=remaining).get("StatusCode")
            except requests.exceptions.RequestException:  # a read timeout: it ran past its time
                if time.monotonic() - started < limits.timeout_s - 1 and not capture.truncated:
                    raise  # the daemon failed, not the run: the grader's problem, not the patch's
                timed_out = not capture.truncated
                self._kill(container)
            reader.join(timeout=5)
            with contextlib.suppress(Exception):
                stream.close()
            oom = exit_code in (None, 137) and bool(
                self.client.api.inspect_container(container.id)["State"].get("OOMKilled"))
        finally:
            self._remove(container)
        return capture.result(exit_code, timed_out, started, oom_killed=oom)

    def _kill(self, container) -> None:
        with contextlib.suppress(Exception):  # already gone, or the daemon is slow: removal follows
            container.kill()


class DockerSandbox:
    """A fresh, labelled container per run: no network, bounded, removed in every path."""

    name = "docker"
    trusted_only = False

    def __init__(self, image: str = DEMO_IMAGE, daemon: DockerDaemon | None = None) -> None:
        self.daemon = daemon or DockerDaemon()
        self.daemon.reap_orphans()
        self.image = image
        try:
            self.image_id = self.daemon.ensure_image(image, pull=image != DEMO_IMAGE)
        except ImageUnavailable as err:
            hint = "; build it with `candlebench build-image`" if image == DEMO_IMAGE else ""
            raise SandboxUnavailable(f"{err}{hint}") from err
        self._ids = {image: self.image_id}

    def resolve(self, image: str | None) -> tuple[str, str]:
        """(tag, id) of the image to run: the sandbox's own, or a task's (pulled if need be)."""
        tag = image or self.image
        if tag not in self._ids:
            self._ids[tag] = self.daemon.ensure_image(tag)
        return tag, self._ids[tag]

    def fingerprint(self, image: str | None = None) -> str:
        return self.resolve(image)[1].removeprefix("sha256:")[:16]

    def run(
        self, workdir: Path, command: str, limits: Limits, *, image: str | None = None,
        workspace: Path | None = None, readonly: Sequence[str] = (),
        env: Mapping[str, str] | None = None, stdin: bytes = b"",
    ) -> RunResult:
        tag, _ = self.resolve(image)
        workdir = Path(workdir).resolve()
        root = os.getuid() == 0
        if root:  # uid 1000 must read a 0700 tree and write into it
            _hand_over([workdir], SANDBOX_UID)
        volumes = {str(workdir): {"bind": "/app", "mode": "rw"}}
        if workspace:
            volumes[str(Path(workspace).resolve())] = {"bind": WORKSPACE, "mode": "ro"}
        for rel in readonly:
            if (workdir / rel).exists() and not (workdir / rel).is_symlink():
                volumes[str(workdir / rel)] = {"bind": f"/app/{rel}", "mode": "ro"}
        user = f"{SANDBOX_UID}:{SANDBOX_UID}" if root else f"{os.getuid()}:{os.getgid()}"
        return self.daemon.run(tag, command, limits, volumes, _base_env(WORKSPACE, env), user, stdin)


def open_sandbox(name: str) -> Sandbox:
    """`docker`, `bubblewrap`, `process`, or `auto` (docker, else bubblewrap, else process)."""
    if name == "process":
        return ProcessSandbox()
    if name == "docker":
        return DockerSandbox()
    if name == "bubblewrap":
        return BubblewrapSandbox()
    if name == "auto":
        for backend in (DockerSandbox, BubblewrapSandbox):
            with contextlib.suppress(SandboxUnavailable):
                return backend()
        return ProcessSandbox()
    raise ValueError(f"sandbox: unknown backend {name!r}; expected docker, bubblewrap, process or auto")

