"""What killed runs leave behind is swept on start; what live work is using is never touched."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from pipeline.store.sweep import STALE_S, sweep

# A grading scratch folder made as the grader makes it, then the process killed mid-grading.
SCRATCH_THEN_DIE = """
import os, sys, tempfile, time
folder = tempfile.mkdtemp(prefix=f"cb-grade-{os.getpid()}-", dir=sys.argv[1])
open(os.path.join(folder, "app.txt"), "w").write("half a checkout")
print(folder, flush=True)
time.sleep(600)
"""


def test_a_killed_gradings_scratch_and_stale_temporaries_are_swept_live_ones_kept(tmp_path):
    home, scratch = tmp_path / "home", tmp_path / "tmp"
    scratch.mkdir()
    dying = subprocess.Popen(
        [sys.executable, "-c", SCRATCH_THEN_DIE, str(scratch)], stdout=subprocess.PIPE, text=True
    )
    dead_folder = dying.stdout.readline().strip()
    dying.send_signal(signal.SIGKILL)
    dying.wait(60)
    live_folder = scratch / f"cb-attempt-{os.getpid()}-abc"  # this process: alive
    live_folder.mkdir()
    partition = home / "lake" / "attempts" / "subject=a" / "date=2026-11-20"
    partition.mkdir(parents=True)
    (partition / "part.parquet").write_text("the stored partition")
    stale, fresh = partition / ".part-0123.parquet", partition / ".part-4567.parquet"
    stale.write_text("half a write")
    fresh.write_text("a write in flight")
    old = time.time() - STALE_S - 60
    os.utime(stale, (old, old))
    unfinished, graded = home / "artifacts" / "ab" / "abcd", home / "artifacts" / "cd" / "cdef"
    for folder in (unfinished, graded):
        folder.mkdir(parents=True)
        (folder / "patch.diff").write_text("")
        os.utime(folder, (old, old))
    (graded / "verdict.json").write_text("{}")

    swept = sweep(home, scratch)

    assert (swept.temporary_files, swept.scratch_folders, swept.artifact_folders) == (1, 1, 1)
    assert not os.path.exists(dead_folder) and live_folder.exists()
    assert not stale.exists() and fresh.exists() and (partition / "part.parquet").exists()
    assert not unfinished.exists() and graded.exists()
    assert "swept 1 temporary files, 1 scratch folders and 1 artifact folders" in str(swept)
    assert not sweep(home, scratch)  # nothing left to sweep
