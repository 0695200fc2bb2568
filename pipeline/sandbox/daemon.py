"""The Docker gateway: the one place candlebench talks to Docker (docker-py).

Images (present, pulled, imported, tagged, labelled), container lifecycle (labelled with their
owner and deadline, removed in every path, orphans of killed processes reaped) here; the ways
containers are run live in `containers.py`, mixed into the same gateway. A daemon that stops
answering mid-run (killed, restarted) is `SandboxLost`, said once, here.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from pipeline.sandbox.base import ImageUnavailable, SandboxLost, SandboxUnavailable
from pipeline.sandbox.containers import ContainerRuns
from pipeline.sandbox.remote import VOLUME_LABEL, Binds, CopiedMounts, is_remote, local_client, send_image

CONTAINER_LABEL = "candlebench.sandbox"

OWNER_LABEL = "candlebench.owner"  # host:pid:start-time of the process that created it

DEADLINE_LABEL = "candlebench.deadline"  # unix time after which it is an orphan whoever owns it

LOCAL_SOCKET = "unix:///var/run/docker.sock"  # docker-py's default


def _start_time(pid: int) -> str | None:
    """Boot-relative start time of a process (tells a live pid from a reused one), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


_OWNER = f"{socket.gethostname()}:{os.getpid()}:{_start_time(os.getpid())}"


class DockerDaemon(ContainerRuns):
    """The one place candlebench talks to Docker (docker-py): images, sandbox containers, orphans.

    dagster-docker's Pipes client is not used for grading containers: it waits without a timeout,
    only stops containers, reads the whole log without a cap, and takes its structured results
    from the container's output, which a patch under test can forge. Verdicts are parsed here,
    outside the container, and reach Dagster as the grading asset's metadata.
    """

    def __init__(self, timeout: float = 60, address: str | None = None) -> None:
        import docker

        self.errors = docker.errors
        self.address = address or os.environ.get("DOCKER_HOST") or LOCAL_SOCKET
        self.remote = is_remote(self.address)  # another machine's disk: mounts are copied (remote.py)
        try:
            if address:
                self.client = docker.DockerClient(base_url=address, timeout=timeout)
            else:
                self.client = docker.from_env(timeout=timeout)
            self.client.ping()
        except Exception as err:  # docker raises several unrelated types here
            raise SandboxUnavailable(
                f"no Docker daemon reachable at {self.address} ({_cause(err)}): start it, or point "
                "DOCKER_HOST at one"
            ) from err
        self._live: set[str] = set()
        self._lock = threading.Lock()
        atexit.register(self._remove_live)

    def answers(self) -> bool:
        """Whether the daemon still answers (a refused or broken connection means it is gone)."""
        try:
            return bool(self.client.ping())
        except Exception:  # refused, reset, its socket gone, a hung daemon's timeout
            return False

    @contextlib.contextmanager
    def answering(self) -> Iterator[None]:
        """Calls in this block that fail because the daemon is gone raise `SandboxLost`; other
        errors (the daemon still answers) stay what they were."""
        try:
            yield
        except (SandboxUnavailable, self.errors.NotFound):
            raise
        except Exception as err:
            if self.answers():
                raise
            raise SandboxLost(f"the Docker daemon at {self.address} went away ({_cause(err)})") from err

    # images
    def image_id(self, tag: str) -> str | None:
        with self.answering():
            try:
                return self.client.images.get(tag).id
            except self.errors.ImageNotFound:
                return None

    def ensure_image(self, tag: str, pull: bool = True) -> str:
        """The image's id: present locally, else pulled; otherwise an error saying how to load it."""
        if found := self.image_id(tag):
            return found
        reason = "pulling is off"
        if self.remote and (local := local_client(LOCAL_SOCKET)) is not None:
            with self.answering():  # docker save here | docker load there
                if found := send_image(local, self.client, tag):
                    return found
        if pull:
            try:
                self.client.images.pull(tag)
                if found := self.image_id(tag):
                    return found
            except Exception as err:  # no registry, no such tag, auth: all the same to the user
                reason = f"pulling it failed: {str(err).strip()[:300]}"
        raise ImageUnavailable(
            f"Docker image {tag} is not present on {self._where()} and {reason}. Load it from a "
            f"saved tarball with `docker load -i <file>.tar` (saved where a registry is reachable "
            f"with `docker save -o <file>.tar {tag}`), then retry."
        )

    def import_rootfs(self, tar_stream, tag: str, changes: Sequence[str]) -> str:
        """`docker import` a root file system tarball (a readable stream) as `tag`."""
        repository, _, version = tag.rpartition(":")
        self.client.api.import_image_from_stream(
            tar_stream, repository=repository, tag=version, changes=list(changes)
        )
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

    # containers
    def _create(self, image: str, command: list[str], labels: dict[str, str], timeout_s: float, **options):
        labels = {
            CONTAINER_LABEL: "1",
            OWNER_LABEL: _OWNER,
            DEADLINE_LABEL: str(int(time.time() + timeout_s + 120)),
            **labels,
        }
        container = self.client.containers.create(image, command, labels=labels, **options)
        with self._lock:
            self._live.add(container.id)
        return container

    def _mounts(self, image: str, volumes: dict[str, dict]):
        """A run's mounts: the host folders on a daemon sharing this disk, else copies (remote.py)."""
        if self.remote:
            return CopiedMounts(self.client, image, volumes, labels={OWNER_LABEL: _OWNER})
        return Binds(volumes)

    def _remove(self, container) -> None:
        try:
            container.remove(force=True, v=True)
        except self.errors.NotFound:
            pass
        except Exception:
            if self.answers():
                raise
            return  # the daemon is gone: an orphan now, reaped when a daemon answers again
        with self._lock:
            self._live.discard(container.id)

    def _where(self) -> str:
        if self.remote:
            return f"the Docker daemon at {self.address} (nor on this machine's)"
        return "this machine"

    def _remove_live(self) -> None:
        for container_id in list(self._live):
            with contextlib.suppress(Exception):
                self.client.api.remove_container(container_id, force=True, v=True)

    def reap_orphans(self) -> list[str]:
        """Remove sandbox containers whose creating process is gone or whose deadline has passed."""
        removed = []
        for container in self.client.containers.list(all=True, filters={"label": CONTAINER_LABEL}):
            labels = container.labels
            overdue = time.time() > float(labels.get(DEADLINE_LABEL, "0") or 0)
            if _dead_owner(labels) or overdue:
                with contextlib.suppress(self.errors.NotFound, self.errors.APIError):
                    container.remove(force=True, v=True)
                    removed.append(container.id)
        if self.remote:  # the copied work trees of a process killed mid-run (remote.py)
            for volume in self.client.volumes.list(filters={"label": VOLUME_LABEL}):
                if _dead_owner(volume.attrs.get("Labels") or {}):
                    with contextlib.suppress(self.errors.NotFound, self.errors.APIError):
                        volume.remove(force=True)
        return removed

    def _kill(self, container) -> None:
        with contextlib.suppress(Exception):  # already gone, or the daemon is slow: removal follows
            container.kill()


def _dead_owner(labels: Mapping[str, str]) -> bool:
    """Whether the process named by an OWNER_LABEL ran on this host and is gone (or was reused)."""
    owner_host, _, rest = labels.get(OWNER_LABEL, "::").partition(":")
    pid, _, started = rest.partition(":")
    return owner_host == socket.gethostname() and (not pid.isdigit() or _start_time(int(pid)) != started)


def _cause(err: BaseException) -> str:
    """Why a call to the daemon failed, in a few words: the socket's error (refused, no such file)
    when one is in the chain of docker-py / requests errors, else that the connection broke."""
    seen, chain = err, {id(err)}
    while seen is not None:
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror.lower()
        inner = next((a for a in getattr(seen, "args", ()) if isinstance(a, BaseException)), None)
        seen = inner or seen.__cause__ or seen.__context__
        if seen is not None and id(seen) in chain:
            break
        chain.add(id(seen))
    return "its connection broke"
