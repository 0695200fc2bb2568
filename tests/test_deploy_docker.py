"""The docker profile for real: `dagster-daemon run` on deploy/docker/dagster.yaml (instance on
PostgreSQL, DockerRunLauncher), the daily job launched with `dagster job launch` for one date,
its run executed in a container of the project image (`candlebench deploy build-image`), its
materializations in Postgres, its lake files in the shared storage, and no container left.

The run's wall time (queued to finished) against the same job in process on the local profile
is the docker profile's per-run overhead: benchmarks/results/profile_overhead_docker.json.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.storage.tags import DOCKER_IMAGE_TAG

from pipeline.orchestration.history import step_error
from tests.needs import unavailable

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path("/var/lib/candlebench")  # mounted into run containers (deploy/docker/dagster.yaml)
DAY = dt.date(2026, 11, 27)
DB = "candlebench_docker_test"
ROLE, PASSWORD = "candlebench_docker_test", "candlebench-docker-test"
WAIT_S = 600  # an upper bound on a loaded 2-core machine; every wait ends on its condition
RESULT = ROOT / "benchmarks" / "results" / "profile_overhead_docker.json"


def _run(*command: str, **options) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, check=False, **options)


def _image() -> str:
    if _run("docker", "info").returncode != 0:
        unavailable("no Docker daemon", ".ci/docker.sh starts one")
    from pipeline.cli.deploy import BuildError, image_digest

    try:
        tag = f"candlebench/project:{image_digest()[:12]}"
    except BuildError as err:
        unavailable(str(err), ".ci/docker.sh builds the base image")
    if _run("docker", "image", "inspect", tag).returncode != 0:
        unavailable(
            f"project image {tag} not built (candlebench deploy build-image)",
            ".ci/docker_profile.sh builds it",
        )
    return tag


def _postgres() -> dict[str, str]:
    """A role and a database of this test's own on the local PostgreSQL (started if stopped)."""
    if shutil.which("pg_ctlcluster") is None:
        unavailable("PostgreSQL is not installed", ".ci/postgres.sh installs it")
    _run("pg_ctlcluster", "15", "main", "start")  # fails harmlessly when already running

    def psql(sql: str) -> subprocess.CompletedProcess:
        return _run("runuser", "-u", "postgres", "--", "psql", "-v", "ON_ERROR_STOP=1", "-qAtc", sql)

    if psql("select 1").returncode != 0:
        unavailable("PostgreSQL does not answer (pg_ctlcluster 15 main start)", ".ci/postgres.sh")
    if psql(f"select 1 from pg_roles where rolname = '{ROLE}'").stdout.strip() != "1":
        assert psql(f"create role {ROLE} login password '{PASSWORD}'").returncode == 0
    psql(f"drop database if exists {DB} with (force)")
    created = psql(f"create database {DB} owner {ROLE}")
    assert created.returncode == 0, created.stderr
    return {
        "CANDLEBENCH_PG_HOST": "127.0.0.1",
        "CANDLEBENCH_PG_PORT": "5432",
        "CANDLEBENCH_PG_USER": ROLE,
        "CANDLEBENCH_PG_PASSWORD": PASSWORD,
        "CANDLEBENCH_PG_DB": DB,
    }


def _write_home(home: Path) -> None:
    """A tiny tracker: the demo suite, four tasks a day, one trial, the process sandbox (run
    containers have no Docker of their own)."""
    (home / "scenario.yaml").write_text(
        yaml.safe_dump(
            {
                "seed": 5,
                "start_date": (DAY - dt.timedelta(days=3)).isoformat(),
                "noise": 0.05,
                "difficulty_levels": {"easy": -1.0, "medium": 0.0, "hard": 1.0},
                "failure_modes": {"empty": 0.5, "wrong_fix": 0.5},
                "subjects": {"sim-a": [{"day": 1, "version": "a-v1", "pass_rate": 0.5}]},
            }
        )
    )
    (home / "tracking.yaml").write_text(
        yaml.safe_dump(
            {
                "suite": "demo",
                "start_date": (DAY - dt.timedelta(days=3)).isoformat(),
                "history_days": 3,
                "sample": {"design": "panel", "size": 4, "seed": 3},
                "trials": 1,
                "confirm_trials": 1,
                "sandbox": "process",
                "allow_untrusted_patches_without_sandbox": True,
                "subjects": [
                    {
                        "name": "sim-a",
                        "adapter": "simulated",
                        "label": "SIMULATED",
                        "scenario": "scenario.yaml",
                    }
                ],
            }
        )
    )


@pytest.fixture
def docker_profile():
    image = _image()
    pg = _postgres()
    SHARED.mkdir(parents=True, exist_ok=True)
    home = SHARED / f"test-{uuid.uuid4().hex[:8]}"
    dagster_home = home / "dagster"
    dagster_home.mkdir(parents=True)
    _write_home(home)
    # What prepare_dagster_home does for the profile (a copy here: the yaml under test)
    shutil.copy(ROOT / "deploy" / "docker" / "dagster.yaml", dagster_home / "dagster.yaml")
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("CANDLEBENCH_CONFIG", "PYTHONPATH")},
        **pg,
        "CANDLEBENCH_HOME": str(home),
        "DAGSTER_HOME": str(dagster_home),
        "CANDLEBENCH_RUN_IMAGE": image,
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the instance's {env: ...} lookups in this process too
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    instance.event_log_storage.set_concurrency_slots("warehouse", 1)
    log = home / "daemon.log"
    daemon = subprocess.Popen(
        [sys.executable, "-m", "dagster._daemon", "run", "-w", str(ROOT / "workspace.yaml")],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield instance, env, home, image, daemon, log
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()
        instance.dispose()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(home, ignore_errors=True)


def _wait(predicate, what: str, daemon: subprocess.Popen, log: Path):
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        if daemon.poll() is not None:
            raise AssertionError(f"the daemon exited waiting for {what}:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    raise AssertionError(f"timed out ({WAIT_S} s) waiting for {what}; daemon log:\n{log.read_text()[-3000:]}")


def _local_in_process_s(tmp_path: Path) -> float:
    """The same job and partition in process on an embedded (local profile) instance."""
    from pipeline.definitions import defs

    home = tmp_path / "local"
    home.mkdir()
    _write_home(home)
    saved = os.environ.get("CANDLEBENCH_HOME")
    os.environ["CANDLEBENCH_HOME"] = str(home)
    try:
        with dg.instance_for_test() as instance:
            began = time.monotonic()
            result = defs.resolve_job_def("daily_job").execute_in_process(
                instance=instance, partition_key=DAY.isoformat(), raise_on_error=False
            )
            wall = time.monotonic() - began
    finally:
        os.environ["CANDLEBENCH_HOME"] = saved or ""
    assert result.success, "the local in-process baseline run failed"
    return wall


def test_daily_job_runs_in_a_container(docker_profile, tmp_path):
    instance, env, home, image, daemon, log = docker_profile
    run_id = str(uuid.uuid4())
    submitted = time.time()
    launched = _run(
        sys.executable, "-m", "dagster", "job", "launch", "-w", str(ROOT / "workspace.yaml"),
        "-j", "daily_job", "--run-id", run_id,
        "--tags", json.dumps({"dagster/partition": DAY.isoformat()}),
        cwd=ROOT, env=env,
    )  # fmt: skip
    assert launched.returncode == 0, launched.stdout + launched.stderr
    assert instance.get_run_by_id(run_id) is not None  # queued for the daemon, not run here

    def finished():
        run = instance.get_run_by_id(run_id)
        return run if run.is_finished else None

    run = _wait(finished, f"run {run_id} to finish", daemon, log)
    record = instance.get_run_record_by_id(run_id)
    entries = instance.all_logs(run_id)
    events = [e.message for e in entries if e.message]
    events += [
        step_error(e.dagster_event.event_specific_data.error)
        for e in entries
        if e.is_dagster_event and e.dagster_event.event_type_value == "STEP_FAILURE"
    ]
    assert run.status == dg.DagsterRunStatus.SUCCESS, "\n".join(events[-15:]) + log.read_text()[-2000:]

    # It ran in a container of the project image, started by the DockerRunLauncher
    container = run.tags["docker/container_id"]
    assert run.tags[DOCKER_IMAGE_TAG] == image
    assert any(f"Launching run in a new container {container}" in m for m in events)

    # Materializations are recorded in PostgreSQL
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    for key in ("daily_sample", "harness_controls"):
        found = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(key), asset_partitions=[DAY.isoformat()]), limit=5
        ).records
        assert [r.run_id for r in found] == [run_id], key
    # The lake files the container wrote are in the shared storage, where the host reads them
    for table in ("samples", "controls"):
        files = list((home / "lake" / table).rglob(f"date={DAY}/*.parquet"))
        assert files, f"no {table} partition for {DAY} under {home / 'lake'}"
    # Compute logs landed in the shared DAGSTER_HOME too (the webserver shows them from there)
    assert list((home / "dagster" / "storage").rglob("*.out")) or list(
        (home / "dagster" / "storage").rglob("*.err")
    ), "no compute logs in the shared DAGSTER_HOME/storage"

    # No run container is left (auto_remove: Docker removes it when the worker exits)
    def no_containers():
        listed = _run("docker", "ps", "-aq", "--filter", f"label=dagster/run_id={run_id}")
        return listed.returncode == 0 and not listed.stdout.strip()

    _wait(no_containers, f"run {run_id}'s container to be removed", daemon, log)
    assert _run("docker", "inspect", container).returncode != 0

    docker_s = record.end_time - record.create_timestamp.timestamp()
    local_s = _local_in_process_s(tmp_path)
    figures = {
        "profile": "docker",
        "job": "daily_job",
        "partition": DAY.isoformat(),
        "docker_run_wall_s": round(docker_s, 2),
        "docker_run_start_to_end_s": round(record.end_time - record.start_time, 2),
        "local_in_process_wall_s": round(local_s, 2),
        "overhead_s": round(docker_s - local_s, 2),
        "ratio": round(docker_s / local_s, 1),
        "submitted_at": dt.datetime.fromtimestamp(submitted, dt.UTC).isoformat(timespec="seconds"),
        "note": "docker: `dagster job launch` (queued) to run end, daemon dequeue + container start + "
        "run worker; local: execute_in_process of the same partition on an embedded instance",
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
