"""Build the Docker image the `docker` sandbox grades in, without any container registry.

`debootstrap` a minimal Debian bookworm (python3, pytest, git) from the apt mirror this
machine already uses, trim it, and import the root file system into Docker as DEMO_IMAGE.
Docker is reached through `DockerDaemon`, the one place candlebench talks to Docker.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pipeline.sandbox.base import DEMO_IMAGE, SANDBOX_UID, Limits, SandboxUnavailable
from pipeline.sandbox.daemon import DockerDaemon
from pipeline.sandbox.docker import DockerSandbox

SUITE = "bookworm"
PACKAGES = ("python3", "python-is-python3", "python3-pytest", "git")  # grading runs `python`
DEFAULT_MIRROR = "http://deb.debian.org/debian"
IMPORT_CHANGES = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    "ENV PYTHONDONTWRITEBYTECODE=1",
    "ENV HOME=/tmp",
    f"USER {SANDBOX_UID}:{SANDBOX_UID}",
    "WORKDIR /app",
    'CMD ["bash"]',
)
# Removed from the root file system before import: caches, docs and translations.
_TRIM = (
    "var/cache/apt",
    "var/lib/apt/lists",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/lintian",
    "var/log",
)


def _deb_lines(text: str) -> list[tuple[str, list[str]]]:
    """(uri, suites) from one-line `deb` entries."""
    found = []
    for line in text.splitlines():
        line = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
        if len(line) >= 3 and line[0] == "deb":
            found.append((line[1], [line[2]]))
    return found


def _deb822(text: str) -> list[tuple[str, list[str]]]:
    """(uri, suites) from deb822 stanzas with `Types: deb`."""
    found = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, value = line.split(":", 1)
            fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        suites = fields.get("suites", "").split()
        found.extend((uri, suites) for uri in fields.get("uris", "").split())
    return found


def apt_mirror(etc: Path = Path("/etc/apt")) -> str:
    """The Debian mirror this machine's apt uses for bookworm (deb.debian.org if none)."""
    entries: list[tuple[str, list[str]]] = []
    sources = [etc / "sources.list"]
    if (etc / "sources.list.d").is_dir():
        sources += sorted((etc / "sources.list.d").iterdir())
    for path in sources:
        if not path.is_file():
            continue
        if path.name.endswith(".list"):
            entries += _deb_lines(path.read_text(errors="replace"))
        elif path.name.endswith(".sources"):
            entries += _deb822(path.read_text(errors="replace"))
    for uri, suites in entries:
        if SUITE in suites and uri.startswith(("http://", "https://", "file:")):
            return uri.rstrip("/")
    return DEFAULT_MIRROR


def unmount_under(root: Path) -> None:
    """Unmount anything debootstrap left mounted inside `root` (proc, sys) before deleting it."""
    prefix = str(root.resolve()) + "/"
    mounts = []
    for line in Path("/proc/mounts").read_text().splitlines():
        point = line.split()[1].replace("\\040", " ")
        if point.startswith(prefix):
            mounts.append(point)
    for point in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False)


def _prepare_root(root: Path) -> None:
    """Trim the tree, drop setuid/setgid bits, add the sandbox user, and create /app."""
    for rel in _TRIM:
        target = root / rel
        if target.is_dir():
            shutil.rmtree(target)
            target.mkdir(parents=True)
    for rel in ("var/cache/apt/archives/partial", "var/lib/apt/lists/partial"):
        (root / rel).mkdir(parents=True, exist_ok=True)
    for top, _dirs, files in os.walk(root):
        for name in files:
            path = Path(top) / name
            mode = path.lstat().st_mode
            if stat.S_ISREG(mode) and mode & (stat.S_ISUID | stat.S_ISGID):
                path.chmod(stat.S_IMODE(mode) & ~(stat.S_ISUID | stat.S_ISGID))
    with (root / "etc/passwd").open("a") as passwd:
        passwd.write(f"app:x:{SANDBOX_UID}:{SANDBOX_UID}:sandbox:/tmp:/bin/bash\n")
    with (root / "etc/group").open("a") as group:
        group.write(f"app:x:{SANDBOX_UID}:\n")
    app = root / "app"
    app.mkdir(exist_ok=True)
    os.chown(app, SANDBOX_UID, SANDBOX_UID)
    app.chmod(0o755)


def build_demo_image(
    tag: str = DEMO_IMAGE, mirror: str | None = None, log: Callable[[str], None] = print, force: bool = False
) -> str:
    """Build `tag` from a debootstrapped Debian root file system; return the image id."""
    try:
        daemon = DockerDaemon(timeout=900)  # an import of a few hundred MB takes a while
    except SandboxUnavailable as err:
        raise RuntimeError(str(err)) from err
    existing = daemon.image_id(tag)
    if existing and not force:
        log(f"image {tag} already present: {existing}")
        return existing
    if shutil.which("debootstrap") is None:
        raise RuntimeError("debootstrap is not installed (apt-get install debootstrap)")
    if os.geteuid() != 0:
        raise RuntimeError("debootstrap needs root; run build-image as root")
    mirror = mirror or apt_mirror()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cb-image-", dir="/var/tmp") as scratch:
        root = Path(scratch) / "root"
        try:
            command = [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(PACKAGES)}",
                "--components=main",
                SUITE,
                str(root),
                mirror,
            ]
            log(f"[1/3] {' '.join(command)}")
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
                raise RuntimeError(f"debootstrap failed (exit {done.returncode}):\n{tail}")
            log(f"      debootstrap done in {time.monotonic() - started:.0f}s")
            _prepare_root(root)
            log(f"[2/3] docker import -> {tag}")
            tar = subprocess.Popen(
                ["tar", "--numeric-owner", "-C", str(root), "-c", "."], stdout=subprocess.PIPE
            )
            try:
                built = daemon.import_rootfs(tar.stdout, tag, IMPORT_CHANGES)
            finally:
                tar.stdout.close()
                tar.wait()
            if tar.returncode != 0:
                raise RuntimeError(f"tar of the root file system failed (exit {tar.returncode})")
        finally:
            unmount_under(root)
    log(f"[3/3] checking python and pytest as uid {SANDBOX_UID} in the sandbox")
    with tempfile.TemporaryDirectory(prefix="cb-check-") as scratch:
        check = DockerSandbox(tag, daemon).run(
            Path(scratch), "python -m pytest --version", Limits(timeout_s=120)
        )
    if check.exit_code != 0:
        daemon.remove_image(tag)  # don't let a broken image be reused
        raise RuntimeError(f"image {tag} cannot run pytest as uid {SANDBOX_UID}: {check.output.strip()}")
    if existing and existing != built:
        daemon.remove_image(existing, force=False)  # the replaced build, unless still in use
    log(f"      {check.output.strip()}")
    log(f"built {tag} ({built}, {daemon.image_size(tag) / 1e6:.0f} MB) in {time.monotonic() - started:.0f}s")
    return built
