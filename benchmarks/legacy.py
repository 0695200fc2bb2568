"""The detector as it was before pipeline/stats/ (commit BASELINE), loaded from git history, so
benchmarks and tests can hold the new code to the old numbers without keeping a copy in the tree."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

BASELINE = "ee1f365cdce79876982850a8cf22fc823e7ed335"  # main before the stats package
ROOT = Path(__file__).resolve().parents[1]


class LegacyUnavailable(RuntimeError):
    """The baseline commit is not in this clone's history (e.g. a shallow clone)."""


def _source(path: str) -> str:
    command = ["git", "-C", str(ROOT), "show", f"{BASELINE}:{path}"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise LegacyUnavailable(f"git show {BASELINE[:10]}:{path}: {done.stderr.strip()}")
    return done.stdout


def load() -> ModuleType:
    """The old pipeline/detection.py (with its pipeline/changepoints.py) as module `legacy_detection`."""
    if "legacy_detection" in sys.modules:
        return sys.modules["legacy_detection"]
    folder = Path(tempfile.mkdtemp(prefix="candlebench-legacy-"))
    (folder / "legacy_changepoints.py").write_text(_source("pipeline/changepoints.py"))
    detection = _source("pipeline/detection.py")
    (folder / "legacy_detection.py").write_text(
        detection.replace("from pipeline.changepoints import", "from legacy_changepoints import")
    )
    for name in ("legacy_changepoints", "legacy_detection"):
        spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules["legacy_detection"]


def detect(connection):
    """The old pipeline.tracker.detect (its SQL, the old detector, its table building), run on
    a DuckDB connection: the tables as they were computed before pipeline/stats/."""
    module = load()
    source = _source("pipeline/tracker.py")
    segment = source[source.index("TRIALS_SQL = ") :]
    import polars as pl

    namespace = {"pl": pl}
    saved = sys.modules.get("pipeline.detection")
    sys.modules["pipeline.detection"] = module  # the old detect() imports it by that name
    try:
        exec(compile(segment, f"{BASELINE[:10]}:pipeline/tracker.py", "exec"), namespace)
        return namespace["detect"](connection)
    finally:
        if saved is None:
            sys.modules.pop("pipeline.detection", None)
        else:
            sys.modules["pipeline.detection"] = saved
