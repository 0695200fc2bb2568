"""Debris a killed run leaves behind, swept when candlebench starts and before each day's work.

- temporary files of atomic writes (lake partitions, ledger records, the read snapshot): named
  `.<name>...tmp` / `.part-<uuid>.parquet`; swept once older than `STALE_S`, so a write in
  flight in another process is never touched;
- scratch folders in `$TMPDIR` (`cb-grade-<pid>-...`, `cb-attempt-<pid>-...`): swept when the
  process named in them is gone;
- artifact folders without a verdict (a grading that died before its verdict): swept once
  older than `STALE_S`; no verdict means no cache entry, so nothing reads them.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.grading.artifacts import VERDICT_FILE

STALE_S = 6 * 3600.0  # longer than any write or grading in flight (gradings time out at 30 min)
SCRATCH = re.compile(r"cb-(?:grade|attempt)-(\d+)-")  # prefix + the owner's pid


@dataclass(frozen=True)
class Swept:
    temporary_files: int = 0
    scratch_folders: int = 0
    artifact_folders: int = 0

    def __bool__(self) -> bool:
        return bool(self.temporary_files or self.scratch_folders or self.artifact_folders)

    def __str__(self) -> str:
        return (
            f"swept {self.temporary_files} temporary files, {self.scratch_folders} scratch folders "
            f"and {self.artifact_folders} artifact folders without a verdict left by killed runs"
        )


def sweep(home: Path, scratch: Path | None = None, now: float | None = None) -> Swept:
    """Remove what killed runs left under `home` and in the scratch folder ($TMPDIR)."""
    now = time.time() if now is None else now
    home = Path(home)
    files = 0
    for folder in (home / "lake", home / "ledger"):
        for path in folder.rglob(".*") if folder.is_dir() else ():
            if path.is_file() and _temporary(path.name) and _older(path, now):
                path.unlink(missing_ok=True)
                files += 1
    for path in home.glob(".warehouse.read.duckdb.*.tmp"):
        if _older(path, now):
            path.unlink(missing_ok=True)
            files += 1
    folders = 0
    root = Path(scratch or tempfile.gettempdir())
    for path in root.glob("cb-*-*-*") if root.is_dir() else ():
        match = SCRATCH.match(path.name)
        if match and path.is_dir() and not alive(int(match.group(1))):
            shutil.rmtree(path, ignore_errors=True)
            folders += 1
    artifacts = 0
    store = home / "artifacts"
    for folder in store.glob("*/*") if store.is_dir() else ():
        if folder.is_dir() and not (folder / VERDICT_FILE).exists() and _older(folder, now):
            shutil.rmtree(folder, ignore_errors=True)
            artifacts += 1
    return Swept(files, folders, artifacts)


def _temporary(name: str) -> bool:
    return name.endswith(".tmp") or (name.startswith(".part-") and name.endswith(".parquet"))


def _older(path: Path, now: float) -> bool:
    try:
        return now - path.stat().st_mtime > STALE_S
    except FileNotFoundError:
        return False


def alive(pid: int) -> bool:
    """Whether a process of this host's pid namespace is running."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
