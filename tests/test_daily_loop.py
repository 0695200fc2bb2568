"""The daily loop's pieces on a real instance: the aggregation sensor's decisions, a broken config
that keeps the code location loaded, partitions that start at the config's start_date, and the
command line's refusals and outputs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.utils import make_new_run_id

from pipeline.cli import main
from sensors.aggregation import aggregation_sensor, contiguous, run_days

ROOT = Path(__file__).resolve().parent.parent


def materialize(instance, key: str, partition: str) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key, partition=partition))


def tick(instance, cursor=None) -> dg.SensorResult:
    return aggregation_sensor(dg.build_sensor_context(instance=instance, cursor=cursor))


def test_contiguous_days_and_run_days():
    assert contiguous(["2026-11-03", "2026-11-01", "2026-11-02", "2026-11-05"]) == [
        ("2026-11-01", "2026-11-03"),
        ("2026-11-05", "2026-11-05"),
    ]
    assert run_days(
        {"dagster/partition": "2026-11-02|sim-codex", "dagster/partition/date": "2026-11-02"}
    ) == {"2026-11-02"}
    assert run_days(
        {
            "dagster/asset_partition_range_start": "2026-11-01",
            "dagster/asset_partition_range_end": "2026-11-03",
        }
    ) == {"2026-11-01", "2026-11-02", "2026-11-03"}


def test_aggregation_waits_for_the_day_then_requests_candles_then_the_report():
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("subject", ["a", "b"])
        materialize(instance, "harness_controls", "2026-11-20")
        materialize(instance, "patch_evaluations", "2026-11-20|a")
        # b's run for that day is still running: the day is not settled yet
        queued = instance.add_run(
            DagsterRun(
                job_name="evaluation_job",
                run_id=make_new_run_id(),
                status=dg.DagsterRunStatus.STARTED,
                tags={"dagster/partition/date": "2026-11-20", "dagster/partition": "2026-11-20|b"},
            )
        )
        first = tick(instance)
        assert first.run_requests == []
        instance.report_run_failed(queued)  # b failed: the others must not wait for it
        second = tick(instance, first.cursor)
        (request,) = second.run_requests
        assert request.job_name == "candles_job" and request.partition_key == "2026-11-20"
        repeat = tick(instance, second.cursor)  # nothing new: nothing requested twice
        assert repeat.run_requests == []
        materialize(instance, "candles", "2026-11-20")
        (report,) = tick(instance, repeat.cursor).run_requests
        assert report.job_name == "report_job"
        materialize(instance, "changepoints", None)
        assert tick(instance, repeat.cursor).run_requests == []  # the report is newer than candles


def test_aggregation_batches_a_window_and_skips_days_already_aggregated():
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("subject", ["a"])
        for day in ("2026-11-01", "2026-11-02", "2026-11-03", "2026-11-05"):
            materialize(instance, "patch_evaluations", f"{day}|a")
        materialize(instance, "candles", "2026-11-02")  # newer than its inputs already
        requests = tick(instance).run_requests
        ranges = sorted(
            (
                r.tags.get("dagster/asset_partition_range_start", r.partition_key),
                r.tags.get("dagster/asset_partition_range_end", r.partition_key),
            )
            for r in requests
        )
        assert ranges == [
            ("2026-11-01", "2026-11-01"),
            ("2026-11-03", "2026-11-03"),
            ("2026-11-05", "2026-11-05"),
        ]


def test_candles_wait_for_a_running_backfill_then_aggregate_its_window_in_one_run():
    import time

    from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill

    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("subject", ["a"])
        backfill = PartitionBackfill("bf1", BulkActionStatus.REQUESTED, False, {}, time.time())
        instance.add_backfill(backfill)
        materialize(instance, "patch_evaluations", "2026-11-01|a")  # its first wave is graded
        first = tick(instance)
        assert first.run_requests == []  # not one candles run per wave
        for day in ("2026-11-02", "2026-11-03"):
            materialize(instance, "patch_evaluations", f"{day}|a")
        instance.update_backfill(backfill.with_status(BulkActionStatus.COMPLETED_SUCCESS))
        (request,) = tick(instance, first.cursor).run_requests
        assert (
            request.tags["dagster/asset_partition_range_start"],
            request.tags["dagster/asset_partition_range_end"],
        ) == ("2026-11-01", "2026-11-03")


def _location(tmp_path: Path, config_text: str) -> subprocess.CompletedProcess:
    """Load the code location in a fresh interpreter on a home with this tracking.yaml."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "tracking.yaml").write_text(config_text)
    code = (
        "import json, dagster as dg; from pipeline.definitions import defs; "
        "from pipeline.orchestration.partitions import date, SETTINGS; "
        "print(json.dumps({'schedules': sorted(s.name for s in defs.schedules), "
        "'sensors': sorted(s.name for s in defs.sensors), 'start': str(date.start.date()), "
        "'cron': [s.cron_schedule for s in defs.schedules], 'error': SETTINGS.error}))"
    )
    env = {**os.environ, "CANDLEBENCH_HOME": str(home)}
    env.pop("CANDLEBENCH_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def demo_config(**changes) -> str:
    raw = yaml.safe_load((ROOT / "pipeline/defaults/tracking.yaml").read_text())
    raw.update(changes)
    return yaml.safe_dump(raw)


def test_partitions_start_at_the_configs_start_date(tmp_path):
    done = _location(tmp_path, demo_config(start_date="2026-10-01", schedule={"cron": "30 7 * * *"}))
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded["start"] == "2026-10-01" and loaded["error"] == ""
    assert loaded["cron"] == ["30 7 * * *", "30 7 * * *"]


def test_a_broken_config_keeps_the_location_and_its_automations(tmp_path):
    broken = demo_config(start_date="2026-10-01", grading_workerz=2, schedule={"cron": "30 7 * * *"})
    done = _location(tmp_path, broken)
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded["schedules"] == ["daily_controls", "daily_evaluations"]
    assert "aggregation_sensor" in loaded["sensors"] and "subjects_sensor" in loaded["sensors"]
    assert "grading_workerz" in loaded["error"] and "did you mean 'grading_workers'" in loaded["error"]
    assert loaded["start"] == "2026-10-01" and loaded["cron"] == ["30 7 * * *", "30 7 * * *"]


def test_a_broken_config_fails_the_schedule_tick_with_its_message(tmp_path, monkeypatch):
    from pipeline.config import ConfigError
    from sensors.schedules import daily_controls

    (tmp_path / "tracking.yaml").write_text(demo_config(trials="three"))
    monkeypatch.setenv("CANDLEBENCH_HOME", str(tmp_path))
    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(instance=instance)
        with pytest.raises(ConfigError, match="'trials' must be int"):
            daily_controls(context)


@pytest.fixture
def demo_home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("CANDLEBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("CANDLEBENCH_CONFIG", raising=False)
    (tmp_path / "home").mkdir()
    return tmp_path / "home"


def test_backfill_refuses_an_unknown_subject_before_any_work(demo_home, capsys):
    (demo_home / "tracking.yaml").write_text(demo_config(start_date="2026-10-01"))
    assert main(["backfill", "--from", "2026-11-01", "--to", "2026-11-02", "--subject", "sim-codx"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "subject 'sim-codx' is not in" in error and "sim-codex" in error
    with dg.DagsterInstance.get() as instance:
        assert instance.get_dynamic_partitions("subject") == [] and instance.get_runs() == []
    assert main(["backfill", "--from", "2026-09-01", "--to", "2026-09-02"]) == 2
    assert "before start_date 2026-10-01" in capsys.readouterr().err
    assert main(["backfill", "--from", "2026-13-01", "--to", "2026-11-02"]) == 2
    assert "--from '2026-13-01' is not a date" in capsys.readouterr().err


def test_subjects_are_listed_and_retired(demo_home, capsys):
    (demo_home / "tracking.yaml").write_text(demo_config())
    from pipeline.orchestration.history import prepare_dagster_home

    prepare_dagster_home()
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("subject", ["sim-codex", "old-agent"])
    assert main(["subjects", "list"]) == 0
    listing = capsys.readouterr().out
    assert "old-agent" in listing and "no longer configured" in listing
    (codex,) = [line for line in listing.splitlines() if line.startswith("sim-codex ")]
    assert re.search(r"; lane simulated/\S+ on simulated, latest; ", codex), codex  # how attribution sees it
    assert codex.endswith("; 1 at once (an instant adapter)"), codex
    assert main(["subjects", "retire", "sim-codex"]) == 2
    assert "still in the tracking config" in capsys.readouterr().err
    assert main(["subjects", "retire", "old-agent"]) == 0
    with dg.DagsterInstance.get() as instance:
        assert instance.get_dynamic_partitions("subject") == ["sim-codex"]


def test_query_prints_full_strings_csv_and_json(demo_home, capsys):
    assert main(["query", "SELECT 1"]) == 2
    assert "no warehouse at" in capsys.readouterr().err
    long = "x" * 300
    with duckdb.connect(str(demo_home / "warehouse.duckdb")) as connection:
        connection.execute(f"CREATE TABLE t AS SELECT 1 AS n, '{long}' AS s")
    assert main(["query", "SELECT * FROM t"]) == 0
    assert long in capsys.readouterr().out
    assert main(["query", "SELECT * FROM t", "--format", "csv"]) == 0
    assert capsys.readouterr().out == f"n,s\n1,{long}\n"
    assert main(["query", "SELECT * FROM t", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"n": 1, "s": long}]
    # lists (changepoints' flipped tasks) have no CSV form: their cells are JSON text
    assert main(["query", "SELECT ['t1', 't2'] AS flipped, {'a': 1} AS s", "--format", "csv"]) == 0
    import csv
    import io

    (row,) = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert json.loads(row["flipped"]) == ["t1", "t2"] and json.loads(row["s"]) == {"a": 1}
