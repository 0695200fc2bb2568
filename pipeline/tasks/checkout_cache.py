"""Work trees of a task image's /app whose per-evaluation cost does not grow with the repository.

A SWE-Bench-Pro /app is hundreds of MB, mostly .git, plus untracked installed files. Copying it
per evaluation (and deleting the copy afterwards) costs time in proportion to its size. Instead:

- once per image *id* and base commit (D10: a retagged image is a different /app), /app is
  exported from the image into the cache, reset to the base commit as Pro's entry script does
  (`git reset --hard <base>; git checkout <base>`, untracked files kept) and handed to the
  sandbox uid: the *base tree*, never written again;
- per evaluation, an overlay mount puts an empty upper folder of its own over the base tree:
  creating it is a mount, writes copy up only the files they touch (metadata only, with
  metacopy, for a chown), and removing it is an unmount and the deletion of what was written.

The evaluation's work tree is a symlink to the overlay's merged folder, so a caller that only
deletes its scratch folder leaves no half-deleted mount behind: `sweep()` (run by every checkout
and at exit) unmounts overlays whose symlink is gone, and `release(dest)` does it at once.
Without overlay (not root, or the kernel refuses) the base tree is copied instead.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from pipeline.grading.patches import GIT_ENV, SAFE_GIT
from pipeline.sandbox.base import SANDBOX_UID

_ORPHAN_S = 600  # a mount folder without an owner this old was left by a crashed checkout


class ImageSource(Protocol):
    """What the cache needs of Docker (pipeline.sandbox.DockerDaemon has both)."""

    def ensure_image(self, tag: str, pull: bool = True) -> str: ...

    def export_dir(self, image: str, path: str, dest: Path) -> None: ...


def _git(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["git", *SAFE_GIT, *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"), **GIT_ENV},
    )


def _entries(root: Path) -> Iterator[str]:
    """`root` and everything below it, symlinks not followed."""
    yield str(root)
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            yield os.path.join(top, name)


def chown_unowned(root: Path, uid: int) -> int:
    """Give `uid` the entries it does not own yet, never following symlinks; returns how many changed.

    On an overlay work tree whose base tree already belongs to the sandbox uid, a chown of every
    entry would copy every file up; skipping owned entries leaves the upper layer empty.
    """
    changed = 0
    for path in _entries(root):
        if os.lstat(path).st_uid != uid:
            os.chown(path, uid, uid, follow_symlinks=False)
            changed += 1
    return changed


def _chown_tree(root: Path, uid: int) -> None:
    """Give `uid` every entry of the tree, symlinks not followed."""
    for path in _entries(root):
        os.chown(path, uid, uid, follow_symlinks=False)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock across processes (two graders preparing the same base tree)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def overlay_supported(scratch: Path) -> bool:
    """True when this process can mount an overlay in `scratch` (root, and a kernel that allows it)."""
    if os.geteuid() != 0:
        return False
    probe = Path(tempfile.mkdtemp(prefix=".probe-", dir=scratch))
    try:
        for name in ("lower", "upper", "work", "merged"):
            (probe / name).mkdir()
        done = _mount(probe / "lower", probe / "upper", probe / "work", probe / "merged")
        if done:
            _umount(probe / "merged")
        return done
    finally:
        shutil.rmtree(probe, ignore_errors=True)


def _mount(lower: Path, upper: Path, work: Path, merged: Path) -> bool:
    if any(c in str(p) for p in (lower, upper, work) for c in ",:\\"):
        raise ValueError(f"overlay paths cannot hold ',', ':' or '\\': {lower}")
    options = f"lowerdir={lower},upperdir={upper},workdir={work}"
    for extra in (",metacopy=on", ""):  # metacopy: a chown copies up metadata, not data
        done = subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o", options + extra, str(merged)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode == 0:
            return True
    return False


def _umount(merged: Path) -> None:
    subprocess.run(["umount", str(merged)], capture_output=True, check=False)


class AppCache:
    """Base trees of images' /app, keyed by image id and base commit, and overlay work trees on them."""

    def __init__(
        self,
        source: ImageSource,
        root: Path,
        owner_uid: int | None = SANDBOX_UID,
        overlay: bool | None = None,
    ) -> None:
        self.source = source
        self.root = Path(root)
        self.owner_uid = owner_uid if os.geteuid() == 0 else None
        (self.root / "mounts").mkdir(parents=True, exist_ok=True)
        self.overlay = overlay_supported(self.root / "mounts") if overlay is None else overlay
        self._guard = threading.Lock()
        atexit.register(self.sweep)

    def key(self, image_id: str, base_commit: str) -> str:
        return hashlib.sha256(f"{image_id}\0{base_commit}".encode()).hexdigest()[:24]

    def base_tree(self, image: str, base_commit: str) -> Path:
        """The /app of `image` (by id) at `base_commit`, exported and prepared once."""
        image_id = self.source.ensure_image(image)
        folder = self.root / "trees" / self.key(image_id, base_commit)
        if (folder / "ready.json").is_file():
            return folder / "app"
        with _locked(self.root / "trees" / f"{folder.name}.lock"):
            if not (folder / "ready.json").is_file():
                self._prepare(image, image_id, base_commit, folder)
        return folder / "app"

    def _prepare(self, image: str, image_id: str, base_commit: str, folder: Path) -> None:
        scratch = Path(tempfile.mkdtemp(prefix=".export-", dir=folder.parent))
        try:
            self.source.export_dir(image, "/app", scratch / "app")
            for args in (("reset", "-q", "--hard", base_commit), ("checkout", "-q", base_commit)):
                step = _git(scratch / "app", *args)
                if step.returncode != 0:
                    raise RuntimeError(f"git {' '.join(args)} in {image}:/app: {step.stderr.strip()}")
            if self.owner_uid is not None:
                _chown_tree(scratch / "app", self.owner_uid)
            (scratch / "ready.json").write_text(
                json.dumps({"image": image, "image_id": image_id, "base_commit": base_commit})
            )
            shutil.rmtree(folder, ignore_errors=True)
            scratch.rename(folder)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def checkout(self, image: str, base_commit: str, dest: Path) -> None:
        """Make `dest` a work tree of `image`'s /app at `base_commit` for one evaluation."""
        lower = self.base_tree(image, base_commit)
        self.sweep()
        dest = Path(dest)
        if not self.overlay:
            done = subprocess.run(
                ["cp", "-a", "--reflink=auto", f"{lower}/.", str(dest)],
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                raise RuntimeError(f"copying the base tree of {image} failed: {done.stderr.strip()}")
            return
        mount = self.root / "mounts" / secrets.token_hex(8)
        for name in ("upper", "work", "merged"):
            (mount / name).mkdir(parents=True)
        if self.owner_uid is not None:
            os.chown(mount / "upper", self.owner_uid, self.owner_uid)
        if not _mount(lower, mount / "upper", mount / "work", mount / "merged"):
            shutil.rmtree(mount, ignore_errors=True)
            raise RuntimeError(f"mounting an overlay on the base tree of {image} failed")
        dest.symlink_to(mount / "merged", target_is_directory=True)
        (mount / "owner").write_text(str(dest.absolute()))  # last: sweep() leaves ownerless mounts be

    def release(self, dest: Path) -> None:
        """Unmount and delete the overlay behind `dest` (and the symlink itself)."""
        dest = Path(dest)
        if dest.is_symlink():
            target = Path(os.readlink(dest))
            dest.unlink()
            if target.parent.parent == self.root / "mounts":
                self._drop(target.parent)

    def sweep(self) -> None:
        """Unmount overlays whose evaluation folder is gone (its scratch folder was deleted)."""
        with self._guard:
            for mount in (self.root / "mounts").iterdir() if (self.root / "mounts").is_dir() else ():
                owner = mount / "owner"
                if not owner.is_file():
                    if time.time() - mount.stat().st_mtime > _ORPHAN_S:  # its creator died mid-way
                        self._drop(mount)
                    continue
                dest = Path(owner.read_text())
                if not (dest.is_symlink() and Path(os.readlink(dest)) == mount / "merged"):
                    self._drop(mount)

    def _drop(self, mount: Path) -> None:
        _umount(mount / "merged")
        if not os.path.ismount(mount / "merged"):
            shutil.rmtree(mount, ignore_errors=True)


class OverlayCheckout:
    """`checkout(task, dest)` for tasks whose repository is their image's /app; `release(dest)`."""

    def __init__(self, cache: AppCache, image_of) -> None:
        self.cache = cache
        self.image_of = image_of  # Task -> image name (tasks.pro.pro_image)

    def __call__(self, task, dest: Path) -> None:
        image = self.image_of(task)
        if image is None:
            raise RuntimeError(f"{task.instance_id}: no image to take /app from")
        self.cache.checkout(image, task.base_commit, dest)

    def release(self, dest: Path) -> None:
        self.cache.release(dest)
