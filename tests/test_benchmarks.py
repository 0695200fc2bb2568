"""Every benchmark runs: each benchmarks/*.py with a `__main__` entry, in its --quick mode, in a
fresh process, exits 0 and writes its JSON. A benchmark that cannot run on this machine (no
Docker, no CLI cache, no Pro fixture) exits 3 and is skipped outside CI, a failure under CI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.needs import unavailable

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
UNAVAILABLE = 3  # benchmarks/record.py
DEADLINE_S = 600  # a quick mode takes ~30 s idle; far beyond this it hangs


# Run --quick by a test of their own already, with stronger assertions than "exits 0":
COVERED = {
    "faults": "tests/test_faults.py",  # ~20 real fault injections, 5-7 minutes: not twice
    "profile_load": "tests/test_deploy.py",  # the 30-process load on PostgreSQL
}


def benchmarks() -> list[str]:
    """The scripts with an entry point (record.py, worlds.py, legacy.py, ... are helpers), but
    those a test of their own runs."""
    return sorted(
        p.stem
        for p in BENCHMARKS.glob("*.py")
        if '__name__ == "__main__"' in p.read_text() and p.stem not in COVERED
    )


def test_the_glob_finds_the_benchmarks():
    found = benchmarks()
    assert {"backfill", "detection_scale", "calibration"} <= set(found)
    assert not {"record", "worlds", "legacy", "baselines", "loop"} & set(found)
    for name, test in COVERED.items():  # what is left out is run by its own test
        assert (BENCHMARKS / f"{name}.py").is_file() and name in (BENCHMARKS.parent / test).read_text()


@pytest.mark.parametrize("name", benchmarks())
def test_benchmark_quick_mode_runs(name, tmp_path):
    out = tmp_path / f"{name}-quick.json"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / f"{name}.py"), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    seconds = time.monotonic() - started
    print(f"{name} --quick: exit {done.returncode} in {seconds:.1f} s")
    if done.returncode == UNAVAILABLE:
        unavailable(f"benchmarks/{name}.py cannot run here: {done.stderr.strip()[-300:]}")
    assert done.returncode == 0, f"{name} --quick exited {done.returncode}:\n{done.stderr[-3000:]}"
    assert out.is_file(), f"{name} --quick wrote no JSON to {out}:\n{done.stdout[-2000:]}"
    assert json.loads(out.read_text()), f"{name} --quick wrote an empty result"


def test_quick_results_do_not_overwrite_full_ones():
    sys.path.insert(0, str(BENCHMARKS))
    from record import result_path

    assert result_path("backfill", quick=True).name == "backfill-quick.json"
    assert result_path("backfill").name == "backfill.json"
    assert result_path("backfill", True, "/tmp/x.json") == Path("/tmp/x.json")
