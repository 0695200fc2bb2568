"""The version sensor and the daily schedule, ticked on a real instance."""

import datetime as dt
import json

import dagster as dg

from pipeline.resources import TrackerResource
from sensors.schedules import daily_evaluations
from sensors.versions import version_sensor


def tick(instance, cursor=None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor,
                                      resources={"tracker": TrackerResource()})
    return version_sensor(context)


def test_version_sensor_adds_subjects_then_reruns_on_a_change(tmp_path, monkeypatch):
    monkeypatch.setenv("CANDLEBENCH_HOME", str(tmp_path))
    with dg.instance_for_test() as instance:
        first = tick(instance)
        assert first.run_requests == []
        (request,) = first.dynamic_partitions_requests
        assert set(request.partition_keys) == {"sim-claude-code", "sim-codex"}
        seen = json.loads(first.cursor)
        assert set(seen) == {"sim-claude-code", "sim-codex"}

        instance.add_dynamic_partitions("subject", list(seen))
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
