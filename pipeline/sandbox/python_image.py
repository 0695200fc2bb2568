"""A python:3.11-slim equivalent, debootstrapped from Debian bookworm: what SWE-Bench-Pro's base
Dockerfiles start FROM, made without a registry (python3.11 as `python`, pip installs allowed,
apt sources as the slim image has them)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pipeline.sandbox.daemon import DockerDaemon
from pipeline.sandbox.dockerfile import DockerfileError
from pipeline.sandbox.images import apt_mirror, unmount_under

BUILDER_VERSION = "1"  # bump whenever a change here alters what gets built

OS_LABEL = "candlebench.os.inputs"

SLIM_BASE = "python:3.11-slim"

OS_TAG = "candlebench/python:3.11-slim-bookworm"

OS_SUITE = "bookworm"

# What python:3.11-slim has on top of a minimal Debian: python, pip, CA certificates, tzdata.
OS_PACKAGES = ("python3", "python3-pip", "python-is-python3", "ca-certificates", "netbase", "tzdata")

OS_ENV = {
    "PATH": "/usr/local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
}

OS_CMD = ["python3"]

OS_TRIM = ("var/cache/apt", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/info")


def os_digest() -> str:
    """What the python:3.11-slim equivalent is made of; its label, so a change rebuilds it."""
    recipe = {
        "builder": BUILDER_VERSION,
        "suite": OS_SUITE,
        "packages": OS_PACKAGES,
        "env": OS_ENV,
        "cmd": OS_CMD,
        "trim": OS_TRIM,
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def _sources(mirror: str) -> str:
    """apt sources as python:3.11-slim has them (bookworm, -updates, -security), on `mirror`."""
    stanza = (
        "Types: deb\nURIs: {uri}\nSuites: {suites}\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )
    text = stanza.format(uri=mirror, suites=f"{OS_SUITE} {OS_SUITE}-updates")
    if mirror.endswith("/debian"):
        text += "\n" + stanza.format(uri=f"{mirror}-security", suites=f"{OS_SUITE}-security")
    return text


def _prepare_os_root(root: Path, mirror: str) -> None:
    """Make the debootstrapped tree look like python:3.11-slim's: its apt sources, pip allowed."""
    for rel in OS_TRIM:
        target = root / rel
        if target.is_dir():
            shutil.rmtree(target)
            target.mkdir(parents=True)
    for rel in ("var/cache/apt/archives/partial", "var/lib/apt/lists/partial"):
        (root / rel).mkdir(parents=True, exist_ok=True)
    (root / "etc/apt/sources.list").unlink(missing_ok=True)
    (root / "etc/apt/sources.list.d").mkdir(parents=True, exist_ok=True)
    (root / "etc/apt/sources.list.d/debian.sources").write_text(_sources(mirror))
    for marker in (root / "usr/lib").glob("python3*/EXTERNALLY-MANAGED"):
        marker.unlink()  # python:3.11-slim's pip installs into the system Python; so does Pro's build
    for rel in ("etc/resolv.conf", "etc/hostname"):  # Docker provides its own; don't ship the host's
        (root / rel).unlink(missing_ok=True)
        (root / rel).touch()


def build_os_image(
    daemon: DockerDaemon, mirror: str | None, log: Callable[[str], None], force: bool = False
) -> str:
    """The python:3.11-slim equivalent (OS_TAG), built by debootstrap unless present; its id."""
    digest = os_digest()
    found = daemon.image_id(OS_TAG)
    if found and not force and (daemon.image_config(OS_TAG).get("Labels") or {}).get(OS_LABEL) == digest:
        log(f"{SLIM_BASE} equivalent present: {OS_TAG} ({found[7:19]})")
        return found
    if shutil.which("debootstrap") is None:
        raise DockerfileError("debootstrap is not installed (apt-get install debootstrap)")
    if os.geteuid() != 0:
        raise DockerfileError("debootstrap needs root; build the Pro image as root")
    mirror = mirror or apt_mirror()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cb-pro-os-", dir="/var/tmp") as scratch:
        root = Path(scratch) / "root"
        try:
            command = [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(OS_PACKAGES)}",
                "--components=main",
                OS_SUITE,
                str(root),
                mirror,
            ]
            log(f"{SLIM_BASE} equivalent: {' '.join(command)}")
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
                raise DockerfileError(f"debootstrap failed (exit {done.returncode}):\n{tail}")
            _prepare_os_root(root, mirror)
            changes = [f"ENV {k}={v}" for k, v in OS_ENV.items()]
            changes += [f"CMD {json.dumps(OS_CMD)}", f"LABEL {OS_LABEL}={digest}"]
            tar = subprocess.Popen(
                ["tar", "--numeric-owner", "-C", str(root), "-c", "."], stdout=subprocess.PIPE
            )
            try:
                built = daemon.import_rootfs(tar.stdout, OS_TAG, changes)
            finally:
                tar.stdout.close()
                tar.wait()
            if tar.returncode != 0:
                raise DockerfileError(f"tar of the root file system failed (exit {tar.returncode})")
        finally:
            unmount_under(root)
    if found and found != built:
        daemon.remove_image(found, force=False)  # the replaced build, unless images still use it
    log(f"{SLIM_BASE} equivalent built: {OS_TAG} in {time.monotonic() - started:.0f}s")
    return built
