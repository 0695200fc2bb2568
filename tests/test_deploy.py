"""Deployment profiles against a real PostgreSQL: the daily job end to end on the postgres
profile, 30 concurrent partition runs sharing one instance (the load test), the k8s profile's
instance config validated by dagster-k8s' and dagster-postgres' own schemas, and the switch's
errors. PostgreSQL comes from `.ci/postgres.sh` (the CANDLEBENCH_PG_* variables)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from pipeline.config import ConfigError, profiles
from tests.needs import unavailable

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import profile_load  # noqa: E402  benchmarks/profile_load.py: the load, shared with its benchmark

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DAY = dt.date(2026, 11, 20)
SUBJECTS = ("sim-claude-code", "sim-codex")
LOAD_DAYS = 15  # x 2 subjects: 30 partition runs at once


@pytest.fixture
def pg_database():
    """A fresh database of its own for one test, dropped afterwards: its name."""
    try:
        profiles.check_postgres()
    except ConfigError as err:
        unavailable(f"no PostgreSQL for the postgres profile: {err}", ".ci/postgres.sh starts one")
    name = f"cb_test_{uuid.uuid4().hex[:10]}"
    profile_load._admin(f"create database {name}")
    yield name
    profile_load._admin(f"drop database if exists {name} with (force)")


def _query(database: str, sql: str) -> list[tuple]:
    connection = profiles.connect(database)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall()
    finally:
        connection.close()


def _env(home: Path, database: str, profile: str = "postgres") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "CANDLEBENCH_CONFIG")}
    return {
        **env,
        "CANDLEBENCH_HOME": str(home),
        "CANDLEBENCH_PROFILE": profile,
        "CANDLEBENCH_PG_DB": database,
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
    }


def _candlebench(env: dict[str, str], *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "candlebench"), *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def test_the_daily_job_runs_end_to_end_on_the_postgres_profile(tmp_path, pg_database):
    home = profile_load.small_home(tmp_path / "home", DAY, LOAD_DAYS)
    env = _env(home, pg_database)
    done = _candlebench(env, "backfill", "--from", DAY.isoformat(), "--to", DAY.isoformat())
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    # the instance is PostgreSQL's: no SQLite run storage in the home, every run SUCCESS there
    assert not list((home / "dagster").rglob("runs.db"))
    runs = _query(pg_database, "select pipeline_name, status from runs")
    jobs = sorted(name for name, _ in runs)
    assert jobs == sorted(
        ["catalog_job", "daily_job", "evaluation_job", "evaluation_job", "candles_job", "report_job"]
    ), runs
    assert {status for _, status in runs} == {"SUCCESS"}
    (events,) = _query(
        pg_database,
        "select count(*) from event_logs where dagster_event_type = 'ASSET_MATERIALIZATION' "
        "and asset_key like '%patch_evaluations%'",
    )[0]
    assert events == 2  # one per date x subject partition
    counts = _candlebench(
        env,
        "query",
        f"SELECT subject, volume FROM candles WHERE date = DATE '{DAY}' ORDER BY 1",
        "--format",
        "json",
    )
    assert counts.returncode == 0, counts.stderr
    rows = json.loads(counts.stdout)
    assert [(r["subject"], r["volume"]) for r in rows] == [(s, 3) for s in SUBJECTS], rows


def test_30_concurrent_partition_runs_share_one_postgres_instance(tmp_path, pg_database):
    """The load test: 15 dates x 2 subjects as 30 `dagster asset materialize` processes at once,
    on one PostgreSQL instance (runs, events and the `sandbox` pool's slots all in it)."""
    start = DAY - dt.timedelta(days=LOAD_DAYS - 1)
    home = profile_load.small_home(tmp_path / "home", start, LOAD_DAYS)
    load = profile_load.run_load(home, _env(home, pg_database), start, LOAD_DAYS, tmp_path / "logs")
    assert load.failed == [], load.tail
    assert load.lock_errors == [], load.tail
    assert load.lost == [], load.lost[:5]  # every partition's 3 attempts and 3 evaluations stored
    runs = _query(
        pg_database, "select status, count(*) from runs where pipeline_name = '__ASSET_JOB' group by 1"
    )
    assert runs == [("SUCCESS", 2 * LOAD_DAYS)], runs
    (materialized,) = _query(
        pg_database,
        "select count(*) from event_logs where dagster_event_type = 'ASSET_MATERIALIZATION' "
        "and (asset_key like '%agent_attempts%' or asset_key like '%patch_evaluations%')",
    )[0]
    assert materialized == 2 * 2 * LOAD_DAYS


def _instance_config(path: Path) -> dict:
    from dagster._core.instance.config import dagster_instance_config

    config, _ = dagster_instance_config(str(path.parent), path.name)
    return config


def _validate(config_type, value) -> None:
    from dagster._config import process_config

    result = process_config(config_type, value)
    assert result.success, [e.message for e in result.errors]


def test_the_k8s_profile_validates_against_dagster_k8s_and_dagster_postgres(monkeypatch):
    from dagster_k8s import K8sRunLauncher
    from dagster_postgres import DagsterPostgresStorage

    for variable in profiles.POSTGRES_VARIABLES:
        monkeypatch.setenv(variable, "5432" if variable.endswith("PORT") else "x")
    instance = yaml.safe_load((ROOT / "deploy/k8s/dagster.yaml").read_text())
    _instance_config(ROOT / "deploy/k8s/dagster.yaml")  # Dagster's instance schema
    launcher = instance["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s", "K8sRunLauncher")
    _validate(K8sRunLauncher.config_type(), launcher["config"])
    _validate(DagsterPostgresStorage.config_type(), instance["storage"]["postgres"])
    # a wrong key is caught: the check can fail
    broken = {**launcher["config"], "job_namespce": "candlebench"}
    from dagster._config import process_config

    assert not process_config(K8sRunLauncher.config_type(), broken).success
    # the Helm values launch runs the same way the instance file says, with the keys as a secret
    values = yaml.safe_load((ROOT / "deploy/k8s/values.yaml").read_text())
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    secrets = [s["name"] for s in values["runLauncher"]["config"]["k8sRunLauncher"]["envSecrets"]]
    assert secrets == launcher["config"]["env_secrets"]
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"][-1] == "pipeline.definitions"
    assert [s["name"] for s in deployment["envSecrets"]] == secrets
    queued = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert queued["maxConcurrentRuns"] == instance["concurrency"]["runs"]["max_concurrent_runs"]
    assert values["dagsterDaemon"]["runMonitoring"]["enabled"] is True


@pytest.mark.parametrize("name", ["local", "postgres"])
def test_each_runnable_profile_is_a_valid_instance(name, monkeypatch):
    for variable in profiles.POSTGRES_VARIABLES:
        monkeypatch.setenv(variable, "5432" if variable.endswith("PORT") else "x")
    config = _instance_config(profiles.profile(name).instance_yaml)
    assert config["run_monitoring"]["enabled"] is True


def test_an_unknown_or_unreachable_profile_is_one_clear_line(tmp_path):
    home = profile_load.small_home(tmp_path / "home", DAY, LOAD_DAYS)
    env = _env(home, "candlebench", profile="postgress")
    done = _candlebench(env, "backfill", "--from", DAY.isoformat(), "--to", DAY.isoformat())
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "CANDLEBENCH_PROFILE='postgress' is not a deployment profile" in done.stderr
    unreachable = {v: "candlebench" for v in profiles.POSTGRES_VARIABLES}
    unreachable.update(CANDLEBENCH_PG_HOST="127.0.0.1", CANDLEBENCH_PG_PORT="1")
    env = {**_env(home, "candlebench"), **unreachable}
    done = _candlebench(env, "backfill", "--from", DAY.isoformat(), "--to", DAY.isoformat())
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "PostgreSQL at 127.0.0.1:1" in done.stderr and "does not accept the connection" in done.stderr
    assert not (home / "dagster" / "dagster.yaml").exists()  # nothing half-made
