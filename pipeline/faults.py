"""Named points where the fault-injection suite (benchmarks/faults.py) kills or pauses a process.

Off unless `CANDLEBENCH_FAULT` is set: `kill:<point>[@n]` sends SIGKILL to this process at the
n-th time (default 1st) it reaches `<point>`; `pause:<point>[@n]` stops there until the file
`release` appears in `CANDLEBENCH_FAULT_DIR`. Either first writes `<point>` into the file `hit`
of that folder, so the suite waits for a condition, never for a duration.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

_reached: dict[str, int] = {}


def point(name: str) -> None:
    """Reached `name`: kill or pause here if the suite asked for it, else nothing."""
    spec = os.environ.get("CANDLEBENCH_FAULT")
    if not spec:
        return
    action, _, where = spec.partition(":")
    target, _, nth = where.partition("@")
    if target != name:
        return
    _reached[name] = _reached.get(name, 0) + 1
    if _reached[name] != int(nth or 1):
        return
    folder = Path(os.environ.get("CANDLEBENCH_FAULT_DIR", "."))
    (folder / "hit").write_text(f"{name} pid {os.getpid()}\n")
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "pause":
        deadline = time.monotonic() + 900
        while not (folder / "release").exists() and time.monotonic() < deadline:
            time.sleep(0.05)  # waiting for the suite's release file, bounded
