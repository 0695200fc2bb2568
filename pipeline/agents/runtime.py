"""Where an agent CLI runs: on the host, or in a fresh container of the task's own image.

`HostRuntime` runs the CLI as a process in the attempt's workspace (the repository only, the
host's toolchain: less faithful, for machines without Docker). `ContainerRuntime` runs it the way
every serious harness does, in a fresh container of the task's image with the repository at
/app, as the grader sees it:

- the grading sandbox's limits, labels and clean-up (`DockerDaemon.run`: uid 1000, read-only
  root, a private /tmp, cgroup memory/CPU/process limits, removed in every path, orphans reaped);
- the workspace mounted at /app (read-write; the patch is `git diff` of it afterwards, on the
  host, with a git that trusts nothing in it), the agent's HOME at /cb/home, the CLI's package
  read-only at /cb/cli;
- `--network none`: loopback only. The model API is reached through the relay (`relay.py`) on
  the container's own 127.0.0.1:8787, which adds the key outside; the CLI holds a placeholder.

A driver asks the runtime for the paths and base URL the CLI must be given (`workdir`, `home`,
`endpoint`) and then `execute`s it with its API (`Api`: upstream + the auth headers); the
executable is mapped to its read-only mount.
"""

from __future__ import annotations

import os
import shlex
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from pipeline.agents.process import DEFAULT_PATH, AgentUnavailable, Finished, agent_env, run_process
from pipeline.agents.relay import Relay, inside_url
from pipeline.sandbox.base import SANDBOX_UID, Limits
from pipeline.sandbox.supervisor import hand_over

if TYPE_CHECKING:
    from pipeline.agents.session import Session
    from pipeline.agents.workspace import Workspace
    from pipeline.sandbox.docker import DockerSandbox

PLACEHOLDER = "candlebench-relay-adds-the-key"  # what a CLI in a container holds instead of a key
APP, HOME, CLI = "/app", "/cb/home", "/cb/cli"
READY = ".cb-relay-ready"  # written in HOME once the relay listens: the CLI starts after it
IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Api:
    """The model API a CLI talks to, and the headers (the key) that authenticate it."""

    upstream: str
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Timings:
    """Where a container attempt's fixed cost goes (seconds), for the transcript and benchmarks."""

    prepare_s: float = 0.0  # workspace handed to the sandbox uid
    start_s: float = 0.0  # container created and started, relay listening
    run_s: float = 0.0  # the CLI, start to exit
    steps: list[str] = field(default_factory=list)


class HostRuntime:
    """The CLI as a process on the host, in the workspace, with the key in its environment."""

    name = "host"
    self_contained = False

    def workdir(self, workspace: Workspace) -> str:
        return str(workspace.path)

    def home(self, workspace: Workspace) -> str:
        return str(workspace.home)

    def endpoint(self, upstream: str) -> str:
        return upstream

    def execute(
        self,
        session: Session,
        argv: list[str],
        env: Mapping[str, str],
        *,
        keys: Sequence[str],
        api: Api | None,
        stdin: str | None = None,
        on_line: Callable[[str], str] | None = None,
    ) -> Finished:
        del api  # the CLI holds the key itself
        return run_process(
            argv,
            session.workspace.path,
            agent_env(session.workspace.home, keys, **env),
            session.timeout_s,
            session.transcript,
            stdin=stdin,
            on_line=on_line,
        )


class ContainerRuntime:
    """The CLI in a fresh container of the task's image, network none, the model API relayed."""

    name = "container"
    self_contained = True  # git objects are copied in: the container sees the workspace only

    def __init__(self, sandbox: DockerSandbox, memory_mb: int = 4096, pids: int = 1024) -> None:
        self.sandbox = sandbox
        self.memory_mb = memory_mb
        self.pids = pids
        self.last = Timings()

    def workdir(self, workspace: Workspace) -> str:
        del workspace
        return APP

    def home(self, workspace: Workspace) -> str:
        del workspace
        return HOME

    def endpoint(self, upstream: str) -> str:
        return inside_url(upstream)

    def execute(
        self,
        session: Session,
        argv: list[str],
        env: Mapping[str, str],
        *,
        keys: Sequence[str],
        api: Api | None,
        stdin: str | None = None,
        on_line: Callable[[str], str] | None = None,
    ) -> Finished:
        timings = self.last = Timings()
        clock = time.monotonic()
        workspace, transcript = session.workspace, session.transcript
        try:
            tag, _ = self.sandbox.resolve(session.image)
        except Exception as err:  # no image, no daemon: nothing ran, nothing was paid
            raise AgentUnavailable(f"the agent container cannot start: {err}") from err
        found = shutil.which(argv[0], path=os.environ.get("PATH", DEFAULT_PATH))
        if not found:
            return Finished(127, False, "", "", f"{argv[0]}: not found")
        host_binary = os.path.realpath(found)
        argv = [str(PurePosixPath(CLI) / Path(host_binary).relative_to(package_root(host_binary))), *argv[1:]]
        (workspace.home / READY).unlink(missing_ok=True)
        if os.getuid() == 0:
            hand_over([Path(os.path.realpath(workspace.path)), workspace.home], SANDBOX_UID)
        timings.prepare_s = time.monotonic() - clock
        volumes = {
            os.path.realpath(workspace.path): {"bind": APP, "mode": "rw"},
            str(workspace.home): {"bind": HOME, "mode": "rw"},
            str(package_root(host_binary)): {"bind": CLI, "mode": "ro"},
            str(_resolv_conf(workspace)): {"bind": "/etc/resolv.conf", "mode": "ro"},
        }
        inside = {
            "PATH": IMAGE_PATH,
            "HOME": HOME,
            "TMPDIR": "/tmp",
            "TERM": "dumb",
            "NO_COLOR": "1",
            **{name: PLACEHOLDER for name in keys if name in os.environ},
            **env,
        }
        # The CLI starts once the relay listens in the container's namespace (it is made after
        # the container starts); `exec` keeps its exit status.
        script = f"until [ -e {HOME}/{READY} ]; do sleep 0.02; done; exec {shlex.join(argv)}"
        relay = Relay(api.upstream, api.headers) if api else None
        started = time.monotonic()

        launched = []  # set once the CLI may start: an error before it cost nothing

        def on_start(container_id: str) -> None:
            if relay is not None:
                relay.open_in(self.sandbox.daemon.container_pid(container_id))
            (workspace.home / READY).write_text("")
            launched.append(time.monotonic())
            timings.start_s = time.monotonic() - started

        tee = Tee(transcript, on_line)
        limits = Limits(timeout_s=session.timeout_s, memory_mb=self.memory_mb, pids=self.pids, tmp_mb=512)
        relayed = api.upstream if api else "nothing"
        transcript.note(f"container: image {tag}, /app = the workspace, network none, relay to {relayed}")
        try:
            result = self.sandbox.daemon.run(
                tag,
                script,
                limits,
                volumes,
                inside,
                f"{SANDBOX_UID}:{SANDBOX_UID}",
                stdin=(stdin or "").encode(),
                on_start=on_start,
                on_line=tee.line,
                stop_at_cap=False,
            )
        except Exception as err:
            if launched:
                raise  # the CLI ran: whatever it spent stands (the ledger never re-runs it)
            transcript.note(f"the agent container could not start: {err}")
            raise AgentUnavailable(f"the agent container could not start: {err}") from err
        finally:
            if relay is not None:
                relay.close()
                for request in relay.requests:
                    timings.steps.append(request)
        timings.run_s = time.monotonic() - started - timings.start_s
        if result.stderr.strip():
            transcript.note("stderr:")
            transcript.write(result.stderr if result.stderr.endswith("\n") else result.stderr + "\n")
        transcript.note(
            f"container: prepared in {timings.prepare_s:.2f}s, started in {timings.start_s:.2f}s, "
            f"ran {timings.run_s:.1f}s; relayed {len(timings.steps)} request(s)"
        )
        return Finished(result.exit_code, result.timed_out, result.stopped, result.stdout, result.stderr)


Runtime = HostRuntime | ContainerRuntime
HOST = HostRuntime()


def choose_runtime(setting: str, sandbox: Callable[[], object] | None, subject: str) -> Runtime:
    """The runtime `settings.runtime` asks for, given the grading sandbox (None: none known)."""
    if setting == "host":
        return HOST
    docker = sandbox() if sandbox is not None else None
    in_docker = getattr(docker, "name", "") == "docker"
    remote = in_docker and docker.daemon.remote  # type: ignore[union-attr]
    if in_docker and not remote and os.geteuid() == 0:
        return ContainerRuntime(docker)  # type: ignore[arg-type]
    if setting == "auto":
        return HOST
    if not in_docker:
        why = "grading does not run in Docker (sandbox: docker)"
    elif remote:  # the relay enters the container's network namespace through this machine's /proc
        address = docker.daemon.address  # type: ignore[union-attr]
        why = f"grading runs on the remote Docker daemon {address}; agent containers need this machine's"
    else:
        why = "the relay joins the container's network namespace, which needs root"
    raise AgentUnavailable(f"subject {subject}: settings.runtime is container, but {why}")


class Tee:
    """Copies each stdout line to the transcript and hands it to the driver's `on_line`."""

    def __init__(self, transcript, on_line: Callable[[str], str] | None) -> None:
        self.transcript, self.on_line = transcript, on_line

    def line(self, text: str) -> str:
        self.transcript.write(text)
        return self.on_line(text) if self.on_line else ""


def _resolv_conf(workspace: Workspace) -> Path:
    """The container's resolver: the relay's, which knows no name (no DNS leaves the container)."""
    path = workspace.root / "resolv.conf"
    path.write_text("nameserver 127.0.0.1\n")
    return path


def package_root(executable: str) -> Path:
    """The folder mounted at /cb/cli for an executable: the npm `package/` folder it lives in
    (codex's binary needs its neighbours), else its own folder."""
    real = Path(os.path.realpath(executable))
    for parent in real.parents:
        if parent.name == "package":
            return parent
    return real.parent
