"""The tracker runs by itself: `dagster dev` (webserver + daemon) on a temporary home, where the
schedule ticks, the subjects sensor adds the partition, and the version sensor re-runs today when
a subject's version changes during the test. Every requested run succeeds, none runs twice."""

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import dagster as dg
import polars as pl
import yaml

ROOT = Path(__file__).resolve().parent.parent
TODAY = dt.date.today()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_setup(home: Path, version: str) -> Path:
    scenario = yaml.safe_load((ROOT / "pipeline/defaults/scenario.yaml").read_text())
    scenario["start_date"] = (TODAY - dt.timedelta(days=9)).isoformat()
    scenario["subjects"] = {"sim-codex": [{"day": 1, "version": version, "pass_rate": 0.45}]}
    (home / "scenario.yaml").write_text(yaml.safe_dump(scenario))
    config = home / "tracking.yaml"
    config.write_text(yaml.safe_dump({
        "suite": "demo", "sample": {"design": "panel", "size": 4, "seed": 1}, "trials": 1,
        "sandbox": "process", "grading_workers": 2, "history_days": 10,
        "schedule": {"cron": "* * * * *", "timezone": "UTC"},
        "subjects": [{"name": "sim-codex", "adapter": "simulated", "label": "SIMULATED",
                      "scenario": "scenario.yaml"}],
    }))
    return config


def wait_for(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(2)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")


def test_schedule_and_version_sensor_drive_runs(tmp_path, monkeypatch):
    home = tmp_path / "home"
    dagster_home = home / "dagster"
    dagster_home.mkdir(parents=True)
    (dagster_home / "dagster.yaml").symlink_to(ROOT / "dagster.yaml")
    config = write_setup(home, "codex-v1")
    env = {**os.environ, "CANDLEBENCH_HOME": str(home), "CANDLEBENCH_CONFIG": str(config),
           "DAGSTER_HOME": str(dagster_home), "CANDLEBENCH_SENSOR_INTERVAL_S": "5"}
    for key in ("CANDLEBENCH_HOME", "CANDLEBENCH_CONFIG", "DAGSTER_HOME"):
        monkeypatch.setenv(key, env[key])
    # Create the instance's storage before the server starts, so two processes never race to.
    with dg.DagsterInstance.get() as instance:
        log = (tmp_path / "dagster-dev.log").open("w")
        server = subprocess.Popen(
            [sys.executable, "-m", "dagster", "dev", "-w", str(ROOT / "workspace.yaml"),
             "-p", str(free_port())],
            cwd=dagster_home, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            def runs(**tags):
                return instance.get_runs(filters=dg.RunsFilter(tags=tags))

            def finished(run_list):
                done = [r for r in run_list if r.is_finished]
                return done if done and len(done) == len(run_list) else None

            scheduled = wait_for(lambda: finished(runs(**{"dagster/schedule_name": "daily_evaluations"})),
                                 240, "the schedule's run to finish")
            attempts_path = home / "lake/attempts/subject=sim-codex" / f"date={TODAY}/part.parquet"
            assert pl.read_parquet(attempts_path)["agent_version"].unique().to_list() == ["codex-v1"]

            # The version sensor has seen v1 once the schedule ran; now the subject changes.
            wait_for(lambda: "codex-v1" in _sensor_cursor(instance), 60, "the version sensor's tick")
            write_setup(home, "codex-v2")
            rerun = wait_for(lambda: finished(runs(**{"candlebench/trigger": "version"})), 240,
                             "the version sensor's re-run to finish")
            assert pl.read_parquet(attempts_path)["agent_version"].unique().to_list() == ["codex-v2"]
            assert rerun[0].tags["candlebench/old_version"] == "codex-v1"

            requested = [r for r in instance.get_runs() if "dagster/run_key" in r.tags]
            assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in scheduled + rerun)
            failed = [(r.job_name, r.tags.get("dagster/partition")) for r in instance.get_runs()
                      if r.status == dg.DagsterRunStatus.FAILURE]
            assert failed == []  # declarative automation's runs (candles, report, ...) too
            keys = Counter(r.tags["dagster/run_key"] for r in requested)
            assert keys and max(keys.values()) == 1, keys
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
            log.close()


def _sensor_cursor(instance) -> str:
    for state in instance.all_instigator_state():
        if state.name == "version_sensor" and state.instigator_data:
            return getattr(state.instigator_data, "cursor", None) or ""
    return ""
