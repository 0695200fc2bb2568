"""Tasks and the suites that hold them.

`model` is the task (a SWE-Bench-Pro row) and the `TaskSource` protocol every suite meets;
`rows` reads and writes the row and prediction files users hand over; `demo` is the built-in
suite; `pro` tracks a file of SWE-Bench-Pro rows in their own images (`pro_images` builds those
images offline, `checkout_cache` makes their /app work trees); `sampling` chooses the day's
panel. A suite is opened by name from `SUITES`.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from pipeline.tasks.model import Task, TaskFormatError, TaskSource

SUITES = {  # config `suite:` -> "module:class"; any other value names a rows file
    "demo": "pipeline.tasks.demo:DemoSuite"
}
ROWS_SUITE = "pipeline.tasks.pro:RowSuite"

__all__ = ["SUITES", "Task", "TaskFormatError", "TaskSource", "open_suite"]


def _load(spec: str) -> type:
    module, _, cls = spec.partition(":")
    return getattr(importlib.import_module(module), cls)


def open_suite(suite: str, home: Path, run_scripts: Path | None = None) -> TaskSource:
    """The suite a config names: a built-in one (its repositories built under the home), or a
    SWE-Bench-Pro rows file with its run_scripts/."""
    if suite in SUITES:
        return _load(SUITES[suite])(Path(home) / "repos")
    return _load(ROWS_SUITE)(Path(suite), Path(home), run_scripts)
