"""`docker`: a fresh, labelled container per run: no network, cgroup limits on memory, CPU and
processes, uid 1000, a read-only root with a private /tmp, killed at the timeout, removed in
every path; tasks with an image of their own run in it."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from pipeline.sandbox.base import (
    DEMO_IMAGE,
    SANDBOX_UID,
    WORKSPACE,
    Capabilities,
    ImageUnavailable,
    Limits,
    RunResult,
    base_env,
)
from pipeline.sandbox.daemon import DockerDaemon
from pipeline.sandbox.supervisor import hand_over


class DockerSandbox:
    """A fresh, labelled container per run: no network, bounded, removed in every path."""

    name = "docker"
    capabilities = Capabilities(isolates=True, task_images=True, app_mount=True)

    def __init__(
        self, image: str = DEMO_IMAGE, daemon: DockerDaemon | None = None, docker_host: str | None = None
    ) -> None:
        self.daemon = daemon or DockerDaemon(address=docker_host)
        self.daemon.reap_orphans()
        self.image = image
        self._ids: dict[str, str] = {}  # resolved on first need: Pro rows need only their own images

    @property
    def image_id(self) -> str:
        return self.resolve(None)[1]

    def resolve(self, image: str | None) -> tuple[str, str]:
        """(tag, id) of the image to run: the sandbox's own, or a task's (pulled if need be)."""
        tag = image or self.image
        if tag not in self._ids:
            try:
                self._ids[tag] = self.daemon.ensure_image(tag, pull=tag != DEMO_IMAGE)
            except ImageUnavailable as err:
                hint = "; build it with `candlebench build-image`" if tag == DEMO_IMAGE else ""
                raise ImageUnavailable(f"{err}{hint}") from err
        return tag, self._ids[tag]

    def image_digest(self, image: str | None = None) -> str:
        return self.resolve(image)[1]

    def fingerprint(self, image: str | None = None) -> str:
        return self.resolve(image)[1].removeprefix("sha256:")[:16]

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
        tag, _ = self.resolve(image)
        workdir = Path(workdir).resolve()
        root = os.getuid() == 0
        if root:  # uid 1000 must read a 0700 tree and write into it
            hand_over([workdir], SANDBOX_UID)
        volumes = {str(workdir): {"bind": "/app", "mode": "rw"}}
        if workspace:
            volumes[str(Path(workspace).resolve())] = {"bind": WORKSPACE, "mode": "ro"}
        for rel in readonly:
            if (workdir / rel).exists() and not (workdir / rel).is_symlink():
                volumes[str(workdir / rel)] = {"bind": f"/app/{rel}", "mode": "ro"}
        user = f"{SANDBOX_UID}:{SANDBOX_UID}" if root else f"{os.getuid()}:{os.getgid()}"
        return self.daemon.run(tag, command, limits, volumes, base_env(WORKSPACE, env), user, stdin)
