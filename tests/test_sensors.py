"""The version sensor and the daily schedule, ticked on a real instance."""

import datetime as dt
import json

import dagster as dg

from pipeline.orchestration.resources import TrackerResource
from sensors.harness import harness_retry_sensor
from sensors.schedules import daily_evaluations
from sensors.subjects import subjects_sensor
from sensors.versions import version_sensor


def tick(instance, cursor=None):
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"tracker": TrackerResource()}
    )
    return version_sensor(context)


def test_subjects_sensor_adds_missing_partitions_once(tmp_path, monkeypatch):
    monkeypatch.setenv("CANDLEBENCH_HOME", str(tmp_path))
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("subject", ["sim-codex"])
        context = dg.build_sensor_context(instance=instance, resources={"tracker": TrackerResource()})
        (request,) = subjects_sensor(context).dynamic_partitions_requests
        assert list(request.partition_keys) == ["sim-claude-code"]
        instance.add_dynamic_partitions("subject", ["sim-claude-code"])
        assert isinstance(subjects_sensor(context), dg.SkipReason)


def test_version_sensor_reruns_today_on_a_change(tmp_path, monkeypatch):
    monkeypatch.setenv("CANDLEBENCH_HOME", str(tmp_path))
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("subject", ["sim-claude-code", "sim-codex"])
        first = tick(instance)
        assert first.run_requests == []
        seen = json.loads(first.cursor)
        assert set(seen) == {"sim-claude-code", "sim-codex"}
        assert tick(instance, first.cursor).run_requests == []

        changed = json.dumps({**seen, "sim-codex": "gpt-0-old"})
        (rerun,) = tick(instance, changed).run_requests
        today = dt.date.today().isoformat()
        assert rerun.partition_key == dg.MultiPartitionKey({"date": today, "subject": "sim-codex"})
        assert rerun.run_key == f"version:sim-codex:{seen['sim-codex']}:{today}"
        assert rerun.tags["candlebench/old_version"] == "gpt-0-old"


def test_daily_schedule_requests_one_run_per_known_subject():
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("subject", ["sim-claude-code"])
        when = dt.datetime(2026, 11, 27, 6, tzinfo=dt.UTC)
        context = dg.build_schedule_context(
            instance=instance, scheduled_execution_time=when, resources={"tracker": TrackerResource()}
        )
        requests = list(daily_evaluations(context))
    assert [r.partition_key for r in requests] == [
        dg.MultiPartitionKey({"date": "2026-11-27", "subject": "sim-claude-code"})
    ]
    assert requests[0].run_key == "daily:2026-11-27:sim-claude-code"


def test_harness_retry_sensor_regrades_a_broken_partition_a_bounded_number_of_times(tmp_path, monkeypatch):
    import polars as pl

    from pipeline.store.warehouse import Warehouse
    from sensors import harness

    monkeypatch.setenv("CANDLEBENCH_HOME", str(tmp_path))
    today = dt.date.today()
    outcomes = ["harness_error"] * 3 + ["resolved"] * 7
    frame = pl.DataFrame(
        {
            "attempt_id": [f"a{i}" for i in range(10)],
            "date": [today] * 10,
            "subject": ["sim-codex"] * 10,
            "trial": [0] * 10,
            "instance_id": [f"t{i}" for i in range(10)],
            "outcome": outcomes,
            "resolved": [o == "resolved" for o in outcomes],
            "apply_step": ["git_apply"] * 10,
            "f2p_passed": [0] * 10,
            "f2p_total": [1] * 10,
            "p2p_passed": [0] * 10,
            "p2p_total": [1] * 10,
            "grade_key": ["k"] * 10,
            "cached": [False] * 10,
            "artifact_dir": ["/x"] * 10,
            "grader_version": ["1"] * 10,
            "env_fingerprint": ["e"] * 10,
            "sandbox": ["process"] * 10,
            "run_id": ["r"] * 10,
            "config_hash": ["c"] * 10,
        }
    )
    Warehouse(tmp_path).lake.write_partition("evaluations", frame, subject="sim-codex", date=today)
    with dg.instance_for_test() as instance:
        cursor, keys = None, []
        for _ in range(harness.MAX_RETRIES + 2):
            context = dg.build_sensor_context(
                instance=instance, cursor=cursor, resources={"tracker": TrackerResource()}
            )
            result = harness_retry_sensor(context)
            keys += [r.run_key for r in result.run_requests]
            cursor = result.cursor
    assert keys == [f"harness-retry:{today}|sim-codex:{n}" for n in range(1, harness.MAX_RETRIES + 1)]


def test_extra_trials_are_added_to_the_day_not_replacing_it(tmp_path, monkeypatch):
    import yaml

    from pipeline.definitions import defs
    from pipeline.orchestration.history import QUIET
    from pipeline.store.warehouse import Warehouse

    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(
        yaml.safe_dump(
            {
                "seed": 1,
                "start_date": "2026-11-01",
                "subjects": {"sim-codex": [{"day": 1, "version": "v1", "pass_rate": 0.5}]},
            }
        )
    )
    config = tmp_path / "tracking.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "suite": "demo",
                "sample": {"size": 2, "seed": 1},
                "trials": 1,
                "sandbox": "process",
                "subjects": [{"name": "sim-codex", "adapter": "simulated", "scenario": str(scenario)}],
            }
        )
    )
    monkeypatch.setenv("CANDLEBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CANDLEBENCH_CONFIG", str(config))
    key = dg.MultiPartitionKey({"date": "2026-11-20", "subject": "sim-codex"})
    with dg.instance_for_test() as instance:  # resolving definitions wants a live instance
        job = defs.resolve_job_def("evaluation_job")
        instance.add_dynamic_partitions("subject", ["sim-codex"])
        # the day after a warning: 1 ordinary trial and 2 warning trials, in the day's own run
        job.execute_in_process(
            instance=instance, partition_key=key, run_config=QUIET, tags={"candlebench/warning_trials": "2"}
        )
        lake = Warehouse(tmp_path / "home").lake
        first = lake.read_partition("attempts", subject="sim-codex", date="2026-11-20")
        assert sorted(first["trial"].to_list()) == [0, 0, 1, 1, 2, 2]
        job.execute_in_process(
            instance=instance, partition_key=key, run_config=QUIET, tags={"candlebench/extra_trials": "2"}
        )
    attempts = lake.read_partition("attempts", subject="sim-codex", date="2026-11-20")
    evaluations = lake.read_partition("evaluations", subject="sim-codex", date="2026-11-20")
    assert sorted(attempts["trial"].unique().to_list()) == [0, 1, 2, 3, 4]
    assert attempts.height == evaluations.height == 10 and attempts["attempt_id"].n_unique() == 10
    # the confirmation's trials are new attempts: the day's first six were kept, not run again
    assert first.join(attempts, on="attempt_id").height == 6
    assert (first.join(attempts, on="attempt_id")["run_id"] == first["run_id"]).all()
