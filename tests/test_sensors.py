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
    context = dg.build_sensor_context(instance=instance, cursor=cursor,
                                      resources={"tracker": TrackerResource()})
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
        context = dg.build_schedule_context(instance=instance, scheduled_execution_time=when)
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
    frame = pl.DataFrame({
        "attempt_id": [f"a{i}" for i in range(10)], "date": [today] * 10, "subject": ["sim-codex"] * 10,
        "trial": [0] * 10, "instance_id": [f"t{i}" for i in range(10)], "outcome": outcomes,
        "resolved": [o == "resolved" for o in outcomes], "apply_step": ["git_apply"] * 10,
        "f2p_passed": [0] * 10, "f2p_total": [1] * 10, "p2p_passed": [0] * 10, "p2p_total": [1] * 10,
        "grade_key": ["k"] * 10, "cached": [False] * 10, "artifact_dir": ["/x"] * 10,
        "grader_version": ["1"] * 10, "env_fingerprint": ["e"] * 10, "sandbox": ["process"] * 10,
        "run_id": ["r"] * 10, "config_hash": ["c"] * 10,
    })
    Warehouse(tmp_path).lake.write_partition("evaluations", frame, subject="sim-codex", date=today)
    with dg.instance_for_test() as instance:
        cursor, keys = None, []
        for _ in range(harness.MAX_RETRIES + 2):
            context = dg.build_sensor_context(instance=instance, cursor=cursor,
                                              resources={"tracker": TrackerResource()})
            result = harness_retry_sensor(context)
            keys += [r.run_key for r in result.run_requests]
            cursor = result.cursor
    assert keys == [f"harness-retry:{today}|sim-codex:{n}" for n in range(1, harness.MAX_RETRIES + 1)]


class ConfirmationWorld:
    """A home where sim-codex's `day` has an alarm and 3 graded attempts, and the sensor's tick."""

    def __init__(self, tmp_path, monkeypatch, day: str) -> None:
        import duckdb
        import polars as pl

        from pipeline.store.warehouse import Warehouse

        monkeypatch.setenv("CANDLEBENCH_HOME", str(tmp_path))
        self.day, self.database = day, str(tmp_path / "warehouse.duckdb")
        with duckdb.connect(self.database) as connection:
            connection.execute(f"CREATE TABLE candles AS SELECT 'sim-codex' AS subject, DATE '{day}' AS date")
            connection.execute(f"CREATE TABLE alarms AS SELECT 'sim-codex' AS subject, DATE '{day}' AS date, "
                               "'down' AS direction, 'one-day' AS rule, -4.8 AS z, -0.21 AS difference")
            connection.execute("CREATE TABLE verdicts AS SELECT 'sim-codex' AS subject, "
                               "'degraded' AS verdict, -0.08 AS difference, -0.12 AS ci_low, "
                               "-0.04 AS ci_high")
        self.lake = Warehouse(tmp_path).lake
        self.rows = pl.DataFrame({"x": list(range(6))})
        for table in ("attempts", "evaluations"):
            folder = self.lake.partition_path(table, subject="sim-codex", date=day)
            folder.parent.mkdir(parents=True)
            self.rows.head(3).write_parquet(folder)

    def sql(self, *statements: str) -> None:
        import duckdb

        with duckdb.connect(self.database) as connection:
            for statement in statements:
                connection.execute(statement)

    def extra_trials_graded(self, instance) -> None:
        """Six attempts graded for the day, as a materialization of its partition says."""
        self.rows.write_parquet(self.lake.partition_path("evaluations", subject="sim-codex", date=self.day))
        key = dg.MultiPartitionKey({"date": self.day, "subject": "sim-codex"})
        instance.report_runless_asset_event(dg.AssetMaterialization("patch_evaluations", partition=key))

    @staticmethod
    def tick(instance, cursor):
        from sensors.confirmation import confirmation_sensor

        context = dg.build_sensor_context(instance=instance, cursor=cursor,
                                          resources={"tracker": TrackerResource()})
        return confirmation_sensor(context)

    def decide(self, instance, request: dg.RunRequest) -> tuple:
        """Run the requested decision as the daemon would, and read what it wrote."""
        from pipeline.definitions import defs
        from pipeline.orchestration.history import QUIET

        assert request.job_name == "decision_job"
        instance.add_dynamic_partitions("subject", ["sim-codex"])
        defs.resolve_job_def("decision_job").execute_in_process(
            instance=instance, partition_key=request.partition_key, tags=request.tags, run_config=QUIET)
        frame = self.lake.read_partition("decisions", subject="sim-codex", date=self.day)
        return frame.select("decision", "attempts_before", "attempts_after").row(0)


def test_confirmation_sensor_asks_once_then_requests_the_decision(tmp_path, monkeypatch):
    world = ConfirmationWorld(tmp_path, monkeypatch, day := "2026-11-27")
    with dg.instance_for_test() as instance:
        first = world.tick(instance, None)
        (request,) = first.run_requests
        assert request.run_key == f"confirm:sim-codex|{day}"
        assert request.tags["candlebench/extra_trials"] == "3"
        assert world.tick(instance, first.cursor).run_requests == []  # once per subject and day

        world.extra_trials_graded(instance)
        waiting = world.tick(instance, first.cursor)
        assert json.loads(waiting.cursor)[f"sim-codex|{day}"]["state"] == "requested"
        instance.report_runless_asset_event(dg.AssetMaterialization("changepoints"))
        deciding = world.tick(instance, waiting.cursor)
        (decide,) = deciding.run_requests
        assert decide.run_key == f"decide:sim-codex|{day}" and decide.tags["candlebench/direction"] == "down"
        assert world.tick(instance, deciding.cursor).run_requests == []  # decided once
        assert world.decide(instance, decide) == ("confirmed", 3, 6)


def test_a_requested_day_is_decided_after_a_newer_day_arrives(tmp_path, monkeypatch):
    world = ConfirmationWorld(tmp_path, monkeypatch, day := "2026-11-26")
    with dg.instance_for_test() as instance:
        first = world.tick(instance, None)
        assert [r.run_key for r in first.run_requests] == [f"confirm:sim-codex|{day}"]
        # The next day is aggregated before the extra trials are graded; with them, the alarm on
        # the first day does not survive the detector's re-run.
        world.sql("INSERT INTO candles VALUES ('sim-codex', DATE '2026-11-27')", "DELETE FROM alarms")
        world.extra_trials_graded(instance)
        instance.report_runless_asset_event(dg.AssetMaterialization("changepoints"))
        deciding = world.tick(instance, first.cursor)
        # only the decision of the requested day: no alarm on the new day, nothing to ask for
        (decide,) = deciding.run_requests
        assert "sim-codex|2026-11-27" not in json.loads(deciding.cursor)
        assert world.decide(instance, decide) == ("cleared", 3, 6)


def test_extra_trials_are_added_to_the_day_not_replacing_it(tmp_path, monkeypatch):
    import yaml

    from pipeline.definitions import defs
    from pipeline.orchestration.history import QUIET
    from pipeline.store.warehouse import Warehouse

    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(yaml.safe_dump({"seed": 1, "start_date": "2026-11-01", "subjects": {
        "sim-codex": [{"day": 1, "version": "v1", "pass_rate": 0.5}]}}))
    config = tmp_path / "tracking.yaml"
    config.write_text(yaml.safe_dump({
        "suite": "demo", "sample": {"size": 2, "seed": 1}, "trials": 1, "sandbox": "process",
        "subjects": [{"name": "sim-codex", "adapter": "simulated", "scenario": str(scenario)}]}))
    monkeypatch.setenv("CANDLEBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CANDLEBENCH_CONFIG", str(config))
    key = dg.MultiPartitionKey({"date": "2026-11-20", "subject": "sim-codex"})
    with dg.instance_for_test() as instance:  # resolving definitions wants a live instance
        job = defs.resolve_job_def("evaluation_job")
        instance.add_dynamic_partitions("subject", ["sim-codex"])
        job.execute_in_process(instance=instance, partition_key=key, run_config=QUIET)
        job.execute_in_process(instance=instance, partition_key=key, run_config=QUIET,
                               tags={"candlebench/extra_trials": "2"})
    lake = Warehouse(tmp_path / "home").lake
    attempts = lake.read_partition("attempts", subject="sim-codex", date="2026-11-20")
    evaluations = lake.read_partition("evaluations", subject="sim-codex", date="2026-11-20")
    assert sorted(attempts["trial"].unique().to_list()) == [0, 1, 2]
    assert attempts.height == evaluations.height == 6 and attempts["attempt_id"].n_unique() == 6
