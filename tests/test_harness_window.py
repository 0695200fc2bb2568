"""The harness-retry sensor's tick reads its 14-day window's partition files only: a lake of
two years gives the same answer as one of a month, from the same files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import polars as pl

from pipeline.orchestration.resources import TrackerResource
from pipeline.store.tables import EVALUATIONS
from pipeline.store.warehouse import Warehouse
from sensors import harness

SUBJECTS = ("sim-a", "sim-b", "sim-c")
TASKS = 10
SHARES = harness.harness_shares  # the real one, under the spy


def partition(subject: str, day: dt.date, errors: int) -> pl.DataFrame:
    outcomes = ["harness_error"] * errors + ["resolved"] * (TASKS - errors)
    rows = [
        EVALUATIONS.row(
            attempt_id=f"{subject}|{day}|{i}",
            date=day,
            subject=subject,
            trial=0,
            instance_id=f"t{i}",
            outcome=outcome,
            resolved=outcome == "resolved",
            apply_step="git_apply",
            f2p_passed=0,
            f2p_total=1,
            p2p_passed=0,
            p2p_total=1,
            grade_key="k",
            cached=False,
            artifact_dir="/x",
            grader_version="1",
            env_fingerprint="e",
            sandbox="process",
            run_id="r",
            config_hash="c",
        )
        for i, outcome in enumerate(outcomes)
    ]
    return EVALUATIONS.frame(rows)


def lake(home: Path, days: int, today: dt.date) -> Warehouse:
    """`days` days of history; every old day is broken (never in the window), and in the last
    weeks sim-b's partition of 3 days ago and sim-c's of 10 days ago are."""
    warehouse = Warehouse(home)
    for back in range(days):
        day = today - dt.timedelta(days=back)
        for subject in SUBJECTS:
            errors = 8 if back > 20 else 5 if (subject, back) in {("sim-b", 3), ("sim-c", 10)} else 0
            path = warehouse.lake.partition_path("evaluations", subject=subject, date=day)
            path.parent.mkdir(parents=True, exist_ok=True)
            partition(subject, day, errors).write_parquet(path)  # schema-checked in `partition`
    return warehouse


def tick(home: Path, monkeypatch) -> tuple[list[str], list[Path]]:
    monkeypatch.setenv("CANDLEBENCH_HOME", str(home))
    read: list[Path] = []

    def spy(files, since, threshold=harness.THRESHOLD):
        read.extend(files)
        return SHARES(files, since, threshold)

    monkeypatch.setattr(harness, "harness_shares", spy)
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, resources={"tracker": TrackerResource()})
        result = harness.harness_retry_sensor(context)
    return [r.run_key for r in result.run_requests], read


def test_a_tick_reads_the_window_alone_whatever_the_history(tmp_path, monkeypatch):
    today = dt.date.today()
    month, years = lake(tmp_path / "month", 30, today), lake(tmp_path / "years", 730, today)
    short, short_files = tick(month.root, monkeypatch)
    long, long_files = tick(years.root, monkeypatch)
    assert (
        short
        == long
        == [
            f"harness-retry:{today - dt.timedelta(days=10)}|sim-c:1",
            f"harness-retry:{today - dt.timedelta(days=3)}|sim-b:1",
        ]
    )
    window = harness.LOOKBACK_DAYS + 1  # since .. today
    assert len(short_files) == len(long_files) == window * len(SUBJECTS)
    assert [p.relative_to(years.root) for p in long_files] == [p.relative_to(month.root) for p in short_files]
    oldest = today - dt.timedelta(days=harness.LOOKBACK_DAYS)
    assert all(f"date={oldest}" <= p.parent.name for p in long_files)
    # the whole lake, scanned, would have found the old broken days too
    everything = years.scan(
        "SELECT count(DISTINCT date) AS n FROM evaluations WHERE outcome = 'harness_error'"
    )
    assert everything["n"][0] > 700


def test_an_empty_window_is_skipped_with_its_reason(tmp_path, monkeypatch):
    lake(tmp_path / "old", 0, dt.date.today())
    old = Warehouse(tmp_path / "old")
    stale = dt.date.today() - dt.timedelta(days=60)
    path = old.lake.partition_path("evaluations", subject="sim-a", date=stale)
    path.parent.mkdir(parents=True)
    partition("sim-a", stale, 9).write_parquet(path)
    monkeypatch.setenv("CANDLEBENCH_HOME", str(old.root))
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, resources={"tracker": TrackerResource()})
        result = harness.harness_retry_sensor(context)
    assert isinstance(result, dg.SkipReason) and "no evaluations since" in result.skip_message
