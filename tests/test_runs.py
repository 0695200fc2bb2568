"""A run whose process was killed is failed and its pool slot freed, so the next run proceeds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import dagster as dg

from pipeline.orchestration.runs import OWNER_TAG, reap_dead_runs

HOLD_A_SLOT = """
import sys, time
from pathlib import Path
import dagster as dg
from pipeline.orchestration.resources import TrackerResource

@dg.asset(pool="warehouse")
def writer(tracker: TrackerResource):
    Path(sys.argv[1]).write_text("holding")
    time.sleep(600)

with dg.DagsterInstance.get() as instance:
    dg.materialize([writer], instance=instance, resources={"tracker": TrackerResource()})
"""

QUICK = """
import dagster as dg
from pipeline.orchestration.resources import TrackerResource

@dg.asset(pool="warehouse")
def writer(tracker: TrackerResource):
    return 1

with dg.DagsterInstance.get() as instance:
    assert dg.materialize([writer], instance=instance, resources={"tracker": TrackerResource()}).success
print("done")
"""


def wait_for(condition, what: str, timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_a_killed_run_is_failed_and_its_slot_freed(tmp_path, monkeypatch):
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "CANDLEBENCH_HOME": str(tmp_path / "home")}
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    with dg.DagsterInstance.get() as instance:
        instance.event_log_storage.set_concurrency_slots("warehouse", 1)
    ready = tmp_path / "ready"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_A_SLOT, str(ready)], env=env)
    try:
        wait_for(lambda: ready.exists() or holder.poll() is not None, "the run to take the slot")
        assert holder.poll() is None
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(60)
    with dg.DagsterInstance.get() as instance:
        (run,) = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.STARTED and run.tags[OWNER_TAG].endswith(f":{holder.pid}")
        assert instance.event_log_storage.get_concurrency_info("warehouse").claimed_slots  # held by nobody
        assert reap_dead_runs(instance) == [run.run_id]
        failed = instance.get_run_by_id(run.run_id)
        assert failed.status == dg.DagsterRunStatus.FAILURE
        assert not instance.event_log_storage.get_concurrency_info("warehouse").claimed_slots
        assert reap_dead_runs(instance) == []  # live and finished runs are left alone
    quick = subprocess.run(
        [sys.executable, "-c", QUICK], env=env, capture_output=True, text=True, timeout=300
    )
    assert quick.returncode == 0 and "done" in quick.stdout, quick.stderr[-2000:]
