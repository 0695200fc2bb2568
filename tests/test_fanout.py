"""Fan-out inside a partition: `sandbox_workers` read from the config (and its former name),
Dagster's pools sized from it, and a real partition run whose grading containers overlap in time
with 4 workers and never with 1 (container lifetimes from Docker's own events, not timings)."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml

from pipeline.config import ConfigError, load_config
from pipeline.orchestration.pools import SANDBOX_POOL, WAREHOUSE_POOL, size_pools

DAY = dt.date(2026, 11, 20)


def _config(tmp_path: Path, **fields) -> Path:
    path = tmp_path / "tracking.yaml"
    base = {
        "suite": "demo",
        "start_date": (DAY - dt.timedelta(days=2)).isoformat(),
        "history_days": 3,
        "sample": {"design": "panel", "size": 10, "seed": 5},
        "trials": 1,
        "sandbox": "docker",
        "subjects": [
            {
                "name": "sim-claude-code",
                "adapter": "simulated",
                "label": "SIMULATED",
                "scenario": "scenario.yaml",
            }
        ],
    }
    path.write_text(yaml.safe_dump({**base, **fields}))
    return path


def test_sandbox_workers_and_its_former_name(tmp_path):
    assert load_config(_config(tmp_path)).sandbox_workers == 2
    assert load_config(_config(tmp_path, sandbox_workers=4)).sandbox_workers == 4
    old = load_config(_config(tmp_path, grading_workers=3))
    assert old.sandbox_workers == old.grading_workers == 3
    assert load_config(_config(tmp_path, grading_workers=3, sandbox_workers=3)).sandbox_workers == 3
    with pytest.raises(ConfigError, match="'sandbox_workers' \\(4\\) and 'grading_workers' \\(3\\) disagree"):
        load_config(_config(tmp_path, grading_workers=3, sandbox_workers=4))
    with pytest.raises(ConfigError, match="'sandbox_workers' must be at least 1"):
        load_config(_config(tmp_path, sandbox_workers=0))
    with pytest.raises(ConfigError, match="'docker_host' must be a Docker address"):
        load_config(_config(tmp_path, docker_host="10.0.0.5:2375"))
    assert (
        load_config(_config(tmp_path, docker_host="tcp://127.0.0.1:2375")).docker_host
        == "tcp://127.0.0.1:2375"
    )
    # a simulated subject's attempts are instant: one at a time (real agents': tests/test_concurrency.py)
    assert load_config(_config(tmp_path)).subject("sim-claude-code").concurrency == 1


def test_pools_sized_from_the_config(tmp_path):
    with dg.instance_for_test() as instance:
        assert size_pools(instance, load_config(_config(tmp_path, sandbox_workers=5))) == {
            WAREHOUSE_POOL: 1,
            SANDBOX_POOL: 5,
        }
        storage = instance.event_log_storage
        assert storage.get_concurrency_info(SANDBOX_POOL).slot_count == 5
        assert storage.get_concurrency_info(WAREHOUSE_POOL).slot_count == 1
        size_pools(instance, load_config(_config(tmp_path, sandbox_workers=3)))
        assert storage.get_concurrency_info(SANDBOX_POOL).slot_count == 3
        size_pools(instance, None)  # an unreadable config leaves the sandbox pool as it was
        assert storage.get_concurrency_info(SANDBOX_POOL).slot_count == 3


def most_at_once(lifetimes: list[tuple[float, float]]) -> int:
    """The largest number of (start, end) intervals open at one instant."""
    edges = sorted(
        [(s, 1) for s, _ in lifetimes] + [(e, -1) for _, e in lifetimes], key=lambda x: (x[0], x[1])
    )
    open_, most = 0, 0
    for _, step in edges:
        open_ += step
        most = max(most, open_)
    return most


def test_most_at_once():
    assert most_at_once([(0, 1), (1, 2), (2, 3)]) == 1  # one ends as the next starts
    assert most_at_once([(0, 3), (1, 2), (1.5, 4)]) == 3


def _partition(
    tmp_path: Path, monkeypatch, docker_client, workers: int
) -> tuple[list[tuple[float, float]], list]:
    """One date x subject partition run (attempts, then grading in Docker) with `workers`; the
    lifetimes of the sandbox containers this process started meanwhile, and the verdicts."""
    from pipeline.definitions import defs
    from pipeline.sandbox.daemon import _OWNER, OWNER_LABEL
    from pipeline.store.warehouse import Warehouse

    tmp_path.mkdir()
    path = _config(tmp_path, sandbox_workers=workers)
    monkeypatch.setenv("CANDLEBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CANDLEBENCH_CONFIG", str(path))
    started = time.time()
    since = int(started) - 1  # Docker's filter is in whole seconds: the exact bound is applied below
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("subject", ["sim-claude-code"])
        key = dg.MultiPartitionKey({"date": DAY.isoformat(), "subject": "sim-claude-code"})
        result = defs.resolve_job_def("evaluation_job").execute_in_process(
            instance=instance, partition_key=key
        )
    assert result.success
    until = int(time.time()) + 1
    events = docker_client.events(
        since=since,
        until=until,
        decode=True,
        filters={"type": "container", "label": f"{OWNER_LABEL}={_OWNER}"},
    )
    began, ended = {}, {}
    for event in events:
        at = event["timeNano"] / 1e9
        if at < started:
            continue  # the previous partition's containers
        if event["Action"] == "start":
            began[event["id"]] = at
        elif event["Action"] == "die":
            ended[event["id"]] = at
    assert began and set(began) == set(ended), (began, ended)
    rows = Warehouse(tmp_path / "home").lake.read_partition(
        "evaluations", subject="sim-claude-code", date=DAY.isoformat()
    )
    verdicts = sorted((r["instance_id"], r["outcome"]) for r in rows.iter_rows(named=True))
    return [(began[c], ended[c]) for c in began], verdicts


def test_grading_containers_of_a_partition_run_side_by_side(tmp_path, monkeypatch, docker_client):
    serial, serial_verdicts = _partition(tmp_path / "one", monkeypatch, docker_client, workers=1)
    fanned, fanned_verdicts = _partition(tmp_path / "four", monkeypatch, docker_client, workers=4)
    assert len(serial) == len(fanned) >= 4  # a container per distinct (task, patch)
    assert most_at_once(serial) == 1
    assert 2 <= most_at_once(fanned) <= 4
    assert fanned_verdicts == serial_verdicts and len(serial_verdicts) == 10  # the same day's grades


def test_prepare_dagster_home_sizes_the_sandbox_pool(tmp_path, monkeypatch):
    from pipeline.orchestration.history import prepare_dagster_home

    monkeypatch.setenv("CANDLEBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CANDLEBENCH_CONFIG", str(_config(tmp_path, sandbox_workers=3)))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    prepare_dagster_home()
    with dg.DagsterInstance.get() as instance:
        assert instance.event_log_storage.get_concurrency_info(SANDBOX_POOL).slot_count == 3
        assert instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL).slot_count == 1
