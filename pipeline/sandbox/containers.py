"""How the gateway runs containers: sandbox runs, image-build steps, plain harness containers,
and copying a folder out of an image. Mixed into `DockerDaemon`, the one Docker gateway."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import socket
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

from pipeline.sandbox.base import OUTPUT_CAP_BYTES, Limits, RunResult
from pipeline.sandbox.supervisor import Capture, Lines, bounded


def answering(method: Callable) -> Callable:
    """Run `method` in the gateway's `answering()`: a daemon gone mid-call raises `SandboxLost`."""

    @functools.wraps(method)
    def wrapped(self, *args, **kwargs):
        with self.answering():
            return method(self, *args, **kwargs)

    return wrapped


def untar_folder(stream, top: str, dest: Path, tar_filter, cap: int | None = None) -> None:
    """Extract a folder `top` from a Docker archive stream (chunks) into `dest`, its contents at
    `dest`'s top; `tar_filter` as tarfile's; past `cap` bytes the archive is refused."""
    with tempfile.SpooledTemporaryFile(max_size=64 << 20) as spool:
        size = 0
        for chunk in stream:
            size += len(chunk)
            if cap is not None and size > cap:
                raise RuntimeError(f"the archive of {top} is larger than {cap >> 30} GiB")
            spool.write(chunk)
        spool.seek(0)
        dest.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=spool) as tar:
            members = []
            for member in tar.getmembers():
                if member.name == top:
                    continue
                member.name = member.name.removeprefix(top + "/")
                members.append(member)
            tar.extractall(dest, members=members, filter=tar_filter)


class ContainerRuns:
    """The container runs of `DockerDaemon` (which provides `client`, `answering`, `answers`,
    `_create`, `_remove`, `_kill`)."""

    def commit_step(
        self,
        image: str,
        argv: Sequence[str],
        config: Mapping,
        mounts: Mapping[str, str],
        timeout_s: float,
        on_output: Callable[[bytes], None],
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
            image,
            command=list(argv[1:]) or None,
            entrypoint=list(argv[:1]) or ["true"],
            environment=list(config.get("Env") or []),
            working_dir=config.get("WorkingDir") or None,
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

    @answering
    def run_container(
        self,
        image: str,
        command: Sequence[str],
        *,
        entrypoint: Sequence[str] | None = None,
        mounts: Mapping[str, str] = MappingProxyType({}),
        network: bool = False,
        timeout_s: float = 3600,
    ) -> RunResult:
        """A container as its image defines it (the image's user, a writable root), for harnesses
        that must run exactly so (SWE-Bench-Pro's own); `mounts` (host folder -> path) are
        writable. Labelled and removed like sandbox containers; output is capped."""
        started = time.monotonic()
        container = self._create(
            image,
            list(command),
            labels={},
            timeout_s=timeout_s,
            detach=True,
            entrypoint=list(entrypoint) if entrypoint is not None else None,
            volumes={source: {"bind": target, "mode": "rw"} for source, target in mounts.items()},
            network_mode=None if network else "none",  # as `docker run --network none`: with /etc/hosts
        )
        try:
            container.start()
            timed_out, exit_code = False, None
            try:
                exit_code = container.wait(timeout=timeout_s).get("StatusCode")
            except Exception:  # a read timeout: it ran past its time, unless the daemon is gone
                if not self.answers():
                    raise
                timed_out = True
                self._kill(container)
            capture = Capture(OUTPUT_CAP_BYTES)
            capture.add("stdout", container.logs(stdout=True, stderr=False))
            capture.add("stderr", container.logs(stdout=False, stderr=True))
        finally:
            self._remove(container)
        return capture.result(exit_code, timed_out, started)

    @answering
    def export_dir(self, image: str, path: str, dest: Path) -> None:
        """Copy folder `path` of `image` to `dest` (e.g. a SWE-Bench-Pro image's /app)."""
        container = self._create(image, ["true"], labels={}, timeout_s=600)
        try:
            stream, _ = container.get_archive(path)
            untar_folder(stream, Path(path).name, dest, "tar")
        finally:
            self._remove(container)

    @answering
    def run(
        self,
        image: str,
        command: str,
        limits: Limits,
        volumes: dict[str, dict],
        env: Mapping[str, str],
        user: str,
        stdin: bytes = b"",
        *,
        on_start: Callable[[str], None] | None = None,
        on_line: Callable[[str], str] | None = None,
        stop_at_cap: bool = True,
    ) -> RunResult:
        """One sandbox container: created, attached, started, waited for with a deadline, removed.

        `on_start(container id)` runs once it has started (an agent's relay joins its network
        namespace); `on_line` sees each stdout line as it comes and may return a reason to stop
        it, as `supervise` does for a process; without `stop_at_cap`, output past the cap is dropped.
        """
        import requests
        from docker.types import LogConfig, Ulimit

        started = time.monotonic()
        capture = Capture(limits.output_bytes)
        lines, stopped = Lines(on_line) if on_line else None, ""
        mounts = self._mounts(image, volumes)
        try:
            container = self._create(
                image,
                bounded(command, limits, cgroup=True),
                labels={},
                timeout_s=limits.timeout_s,
                stdin_open=bool(stdin),
                detach=not stdin,  # docker-py: StdinOnce only when not detached
                # No network, but /etc/hosts kept (network_disabled would drop it); the image's
                # ENTRYPOINT (Pro's is /bin/bash) must not wrap our argv.
                working_dir="/app",
                volumes=mounts.named(),
                network_mode="none",
                entrypoint=[],
                mem_limit=f"{limits.memory_mb}m",
                memswap_limit=f"{limits.memory_mb}m",
                nano_cpus=int(limits.cpus * 1e9),
                pids_limit=limits.pids,
                read_only=True,
                tmpfs={"/tmp": f"rw,exec,nosuid,nodev,size={limits.tmp_mb}m,mode=1777"},
                user=user,
                environment=dict(env),
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                ulimits=[
                    Ulimit(name="fsize", soft=limits.file_mb << 20, hard=limits.file_mb << 20),
                    Ulimit(name="core", soft=0, hard=0),
                ],
                log_config=LogConfig(type="json-file", config={"max-size": "1m", "max-file": "1"}),
            )
            try:
                # Attached before it starts, so nothing is missed without replaying the log.
                stream = self.client.api.attach(
                    container.id, stdout=True, stderr=True, stream=True, logs=False, demux=True
                )

                def read() -> None:
                    nonlocal stopped
                    killer = None
                    with contextlib.suppress(Exception):  # the stream breaks when the container dies
                        for out, err in stream:
                            if out and lines and not stopped and (stopped := lines.feed(out)):
                                killer = threading.Thread(target=self._kill, args=(container,), daemon=True)
                                killer.start()
                            if killer is None and (
                                (out and not capture.add("stdout", out) and stop_at_cap)
                                or (err and not capture.add("stderr", err) and stop_at_cap)
                            ):
                                # Past the cap: kill, but keep draining, or dockerd blocks the kill.
                                killer = threading.Thread(target=self._kill, args=(container,), daemon=True)
                                killer.start()

                feed = (
                    self.client.api.attach_socket(container.id, params={"stdin": 1, "stream": 1})
                    if stdin
                    else None
                )
                reader = threading.Thread(target=read, daemon=True)
                reader.start()
                container.start()
                if on_start is not None:
                    on_start(container.id)
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
                    early = time.monotonic() - started < limits.timeout_s - 1 and not capture.truncated
                    if early or not self.answers():
                        raise  # the daemon failed, not the run: the grader's problem, not the patch's
                    timed_out = not capture.truncated
                    self._kill(container)
                reader.join(timeout=5)
                with contextlib.suppress(Exception):
                    stream.close()
                if lines and not stopped:
                    lines.flush()
                    stopped = lines.stopped
                oom = exit_code in (None, 137) and bool(
                    self.client.api.inspect_container(container.id)["State"].get("OOMKilled")
                )
                mounts.copy_back(container.id)
            finally:
                self._remove(container)
        finally:
            mounts.remove()
        result = capture.result(exit_code, timed_out, started, oom_killed=oom, stop_at_cap=stop_at_cap)
        return dataclasses.replace(result, stopped=stopped) if stopped else result

    def container_pid(self, container_id: str) -> int:
        """The host pid of a running container's first process (its namespaces are under /proc)."""
        return int(self.client.api.inspect_container(container_id)["State"]["Pid"])
