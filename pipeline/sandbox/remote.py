"""Grading on a Docker daemon that does not share this machine's disk (`docker_host: tcp://...`
or `ssh://...`): no host path can be bind-mounted there, so each folder a sandbox run mounts is
copied into a named volume on that daemon through its archive API, and the work tree is copied
back after the run, before the container is removed. Images the remote daemon lacks are streamed
to it from this machine's daemon (`docker save | docker load`), never pulled from a registry
behind the user's back.

What is weaker than on a local daemon, and what holds instead: single graded files cannot be
mounted read-only over the work tree (a volume is a folder), so they are not; the grader's digest
of the graded files before and after the run (taken on the copied-back tree) still marks a run
that changed them as tampered, as on the process sandbox.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import tarfile
import tempfile
import uuid
from pathlib import Path

from pipeline.sandbox.containers import untar_folder

REMOTE_SCHEMES = ("tcp://", "ssh://", "http://", "https://")
COPY_CAP_BYTES = 4 << 30  # a work tree copied back larger than this is the run's doing: refused
VOLUME_LABEL = "candlebench.sandbox.volume"
_STAGE = "cb-stage"  # where a filler container mounts the volume it fills


def is_remote(address: str | None) -> bool:
    """Whether a daemon address names another machine (bind mounts of our paths cannot work)."""
    return bool(address) and address.startswith(REMOTE_SCHEMES)


def _no_escape(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    """tarfile's `data` filter (no absolute or escaping paths or links, no devices, no setuid),
    keeping ownership; a member it refuses is left out rather than failing the whole copy."""
    try:
        kept = tarfile.data_filter(member, dest)
    except tarfile.FilterError:
        return None
    return kept.replace(uid=member.uid, gid=member.gid, uname=member.uname, gname=member.gname, deep=False)


@dataclasses.dataclass
class CopiedMounts:
    """The named volumes standing in for one run's bind mounts on a remote daemon."""

    client: object  # docker.DockerClient of the remote daemon
    image: str
    volumes: dict[str, dict] = dataclasses.field(default_factory=dict)  # as the run passes them
    labels: dict[str, str] = dataclasses.field(default_factory=dict)  # the owner, for the reaper
    made: list[str] = dataclasses.field(default_factory=list)

    def named(self, skip_under: str = "/app/") -> dict[str, dict]:
        """Fill one volume per mounted folder; the run's `volumes` argument for them. Mounts of
        single paths inside the work tree (read-only graded files) are left out: see the module."""
        named = {}
        for source, spec in self.volumes.items():
            if spec["bind"].startswith(skip_under):
                continue
            name = f"cb-{uuid.uuid4().hex[:16]}"
            self.client.volumes.create(name, labels={VOLUME_LABEL: "1", **self.labels})
            self.made.append(name)
            self._fill(name, Path(source))
            named[name] = {"bind": spec["bind"], "mode": spec["mode"]}
        return named

    def _fill(self, volume: str, source: Path) -> None:
        """Copy `source` into `volume` through a created, never started, container's archive API;
        the tar's top folder carries the source's owner, so the volume's root is writable by the
        sandbox uid as the bind-mounted folder was."""
        api = self.client.api
        filler = api.create_container(
            self.image,
            command=["true"],
            entrypoint=[],
            host_config=api.create_host_config(binds={volume: {"bind": f"/{_STAGE}", "mode": "rw"}}),
        )["Id"]
        try:
            with tempfile.TemporaryFile() as spool:
                with tarfile.open(fileobj=spool, mode="w") as tar:
                    tar.add(source, arcname=_STAGE)
                spool.seek(0)
                if not api.put_archive(filler, "/", spool):
                    raise RuntimeError(f"the remote daemon refused the copy of {source}")
        finally:
            with contextlib.suppress(Exception):
                api.remove_container(filler, force=True, v=False)

    def copy_back(self, container_id: str) -> None:
        """Replace each writable mounted folder's contents with the run's result."""
        for source, spec in self.volumes.items():
            if spec["mode"] != "rw":
                continue
            stream, _ = self.client.api.get_archive(container_id, spec["bind"])
            dest = Path(source)
            for entry in dest.iterdir():
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
            untar_folder(stream, Path(spec["bind"]).name, dest, _no_escape, cap=COPY_CAP_BYTES)

    def remove(self) -> None:
        for name in self.made:
            with contextlib.suppress(Exception):
                self.client.volumes.get(name).remove(force=True)
        self.made.clear()


@dataclasses.dataclass
class Binds:
    """A local daemon's mounts: the host folders themselves, nothing to copy or remove."""

    volumes: dict[str, dict]

    def named(self) -> dict[str, dict]:
        return self.volumes

    def copy_back(self, container_id: str) -> None:
        pass

    def remove(self) -> None:
        pass


def send_image(local, remote, tag: str) -> str | None:
    """Stream `tag` from this machine's daemon into the remote one (`docker save | docker load`);
    the remote id, or None when this machine's daemon does not have it either."""
    try:
        image = local.images.get(tag)
    except Exception:  # not here either (or no local daemon): the caller says what to do
        return None
    remote.images.load(image.save(named=True))
    return remote.images.get(tag).id


def local_client(address: str):
    """docker-py's client of this machine's own daemon at `address`, or None when none answers."""
    import docker

    with contextlib.suppress(Exception):
        client = docker.DockerClient(base_url=address)
        client.ping()
        return client
    return None
