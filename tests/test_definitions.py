"""The code location loads as `dagster dev` loads it, and the instance reads our dagster.yaml."""

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

ROOT = Path(__file__).resolve().parent.parent


def test_definitions_load_without_warnings():
    """Imported in a fresh interpreter with every warning an error, as the code server imports it."""
    code = (
        "import warnings; warnings.simplefilter('error'); import dagster as dg; "
        "import pipeline.definitions as d; dg.Definitions.validate_loadable(d.defs)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def test_asset_graph_snapshot():
    from pipeline.definitions import defs

    # Resolving definitions reads state through the current instance: give it a live one.
    with dg.instance_for_test():
        graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert keys == {
        "task_catalog",
        "daily_sample",
        "agent_attempts",
        "patch_evaluations",
        "harness_controls",
        "candles",
        "changepoints",
        "tracker_report",
        "alarm_decisions",
    }
    upstream = {
        k.to_user_string(): {p.to_user_string() for p in graph.get(k).parent_keys}
        for k in graph.get_all_asset_keys()
    }
    assert upstream["patch_evaluations"] == {"agent_attempts"}
    assert upstream["candles"] == {"patch_evaluations", "harness_controls"}
    assert upstream["tracker_report"] == {"changepoints"}
    jobs = {job.name for job in defs.resolve_all_job_defs()}
    assert {"daily_job", "evaluation_job", "regrade_job", "candles_job", "report_job", "decision_job"} <= jobs
    assert {s.name for s in defs.schedules} == {"daily_controls", "daily_evaluations"}
    assert {s.name for s in defs.sensors} == {
        "aggregation_sensor",
        "version_sensor",
        "subjects_sensor",
        "harness_retry_sensor",
        "confirmation_sensor",
    }
    # One mechanism runs the daily loop (schedules, then the aggregation sensor): no asset also
    # waits on declarative automation, which is off unless its own sensor is turned on.
    assert all(graph.get(k).automation_condition is None for k in graph.get_all_asset_keys())


SNAPSHOT = ROOT / "tests" / "snapshots" / "definitions.json"


def describe(defs: dg.Definitions) -> dict:
    """The code location's shape: what a change to the graph, jobs or automations would alter."""
    graph = defs.resolve_asset_graph()

    def partitions(node) -> str:
        found = node.partitions_def
        if found is None:
            return "none"
        if isinstance(found, dg.MultiPartitionsDefinition):
            return " x ".join(f"{d.name}:{type(d.partitions_def).__name__}" for d in found.partitions_defs)
        return type(found).__name__

    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        policy = node.backfill_policy
        assets[key.to_user_string()] = {
            "deps": sorted(p.to_user_string() for p in node.parent_keys),
            "group": node.group_name,
            "partitions": partitions(node),
            "pools": sorted(node.pools or ()),
            "backfill": policy.policy_type.value if policy else None,
            "kinds": sorted(node.kinds),
        }
    jobs = {
        job.name: sorted(k.to_user_string() for k in job.asset_layer.selected_asset_keys)
        for job in defs.resolve_all_job_defs()
        if not job.name.startswith("__")
    }
    return {
        "assets": assets,
        "checks": sorted(k.to_user_string() for k in graph.asset_check_keys),
        "jobs": jobs,
        "schedules": {
            s.name: {"job": s.job_name, "status": s.default_status.value, "timezone": s.execution_timezone}
            for s in defs.schedules
        },
        "sensors": {
            s.name: {
                "jobs": sorted(j.name for j in s.jobs) if s.has_jobs else [],
                "status": s.default_status.value,
            }
            for s in defs.sensors
        },
        "executor": defs.executor.name if defs.executor else None,
    }


def test_definitions_match_their_snapshot():
    """A change to the asset graph, jobs, checks or automations shows up here, and in review.
    Accept an intended change with CANDLEBENCH_UPDATE_SNAPSHOT=1."""
    from pipeline.definitions import defs

    with dg.instance_for_test():
        found = describe(defs)
    if os.environ.get("CANDLEBENCH_UPDATE_SNAPSHOT") == "1":
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
    assert found == json.loads(SNAPSHOT.read_text())


def test_workspace_loads_through_the_cli(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "CANDLEBENCH_HOME": str(tmp_path / "cb")}
    done = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "resource" not in done.stderr.lower() or "missing" not in done.stderr.lower()


def test_instance_uses_the_repository_dagster_yaml(tmp_path, monkeypatch):
    from pipeline.orchestration.history import prepare_dagster_home

    monkeypatch.setenv("CANDLEBENCH_HOME", str(tmp_path))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    home = prepare_dagster_home()
    assert (home / "dagster.yaml").resolve() == ROOT / "dagster.yaml"
    with dg.DagsterInstance.get() as instance:
        assert Path(instance.root_directory) == home
        concurrency = instance.get_concurrency_config()
        assert concurrency.run_queue_config.max_concurrent_runs == 4
        assert concurrency.pool_config.default_pool_limit == 2
        assert instance.run_retries_enabled


def test_the_home_is_the_same_from_any_folder(tmp_path, monkeypatch):
    """Without CANDLEBENCH_HOME every command, and Dagster started in DAGSTER_HOME, finds the
    checkout's home: a command run from another folder never starts an empty one."""
    from pipeline.config import PROJECT_ROOT, home
    from pipeline.orchestration.history import prepare_dagster_home

    monkeypatch.delenv("CANDLEBENCH_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    assert home() == PROJECT_ROOT / ".candlebench"
    monkeypatch.setenv("CANDLEBENCH_HOME", str(tmp_path / "elsewhere"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    dagster_home = prepare_dagster_home()
    assert dagster_home == tmp_path / "elsewhere" / "dagster"
    monkeypatch.chdir(dagster_home)
    assert home() == tmp_path / "elsewhere"
