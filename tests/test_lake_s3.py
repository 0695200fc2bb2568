"""The lake on a real S3 server (SeaweedFS on loopback, `.ci/s3.sh`): the daily job end to end
with `CANDLEBENCH_LAKE=s3://...` gives the local lake's candles, a partition is replaced
atomically when its writer is killed, and concurrent writers lose nothing."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl
import pytest
import yaml

from pipeline.config import pin_demo_config
from pipeline.store.lake import LAKE_VARIABLE
from pipeline.store.objects import ObjectLake
from pipeline.store.tables import TABLES
from pipeline.store.warehouse import Warehouse
from tests.needs import unavailable

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DAY = dt.date(2026, 11, 20)


@pytest.fixture
def s3_uri():
    """A fresh prefix in the test server's bucket, removed afterwards."""
    if not os.environ.get("CANDLEBENCH_TEST_S3"):
        unavailable("no S3 server: CANDLEBENCH_TEST_S3 is not set", ".ci/s3.sh starts SeaweedFS")
    from pipeline.store.objects import s3_filesystem

    fs = s3_filesystem()
    if not fs.exists("candlebench"):
        fs.mkdir("candlebench")
    uri = f"s3://candlebench/test-{uuid.uuid4().hex[:10]}"
    yield uri
    if fs.exists(uri):
        fs.rm(uri, recursive=True)


def _samples(day: str, tasks: list[str]) -> pl.DataFrame:
    return TABLES["samples"].frame([_row(day, t, i) for i, t in enumerate(tasks)])


def _row(day: str, task: str, position: int) -> dict:
    return {
        "date": dt.date.fromisoformat(day),
        "instance_id": task,
        "position": position,
        "sample_seed": 1,
        "run_id": "test",
        "config_hash": "test",
    }


CANDLES = (
    "SELECT date, subject, open, close, rate, volume, resolved, harness_errors FROM candles ORDER BY ALL"
)
ATTEMPTS = "SELECT subject, count(*) AS n, min(attempt_id) AS first FROM attempts GROUP BY 1 ORDER BY 1"


def _candlebench(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(BIN / "candlebench"), *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


def _home(home: Path, lake: str | None) -> dict[str, str]:
    """A one-day home (3 demo tasks, 1 trial, the process sandbox), its lake local or `lake`."""
    config = pin_demo_config(DAY, home)
    raw = yaml.safe_load(config.read_text())
    raw.update(trials=1, sandbox="process", start_date=(DAY - dt.timedelta(days=5)).isoformat())
    raw["sample"]["size"] = 3
    config.write_text(yaml.safe_dump(raw))
    env = {
        k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "CANDLEBENCH_CONFIG", LAKE_VARIABLE)
    }
    env.update(CANDLEBENCH_HOME=str(home), PATH=f"{BIN}{os.pathsep}{env['PATH']}")
    return {**env, LAKE_VARIABLE: lake} if lake else env


def test_the_daily_job_on_an_s3_lake_gives_the_local_lakes_candles(tmp_path, s3_uri):
    answers = []
    for home, lake in ((tmp_path / "local", None), (tmp_path / "s3", s3_uri)):
        env = _home(home, lake)
        _candlebench(env, "backfill", "--from", DAY.isoformat(), "--to", DAY.isoformat())
        answers.append(
            [json.loads(_candlebench(env, "query", sql, "--format", "json")) for sql in (CANDLES, ATTEMPTS)]
        )
    assert len(answers[0][0]) == 2 and answers[1] == answers[0]
    assert not list((tmp_path / "s3").glob("lake/**/*.parquet"))  # nothing of the lake on local disk
    lake = ObjectLake(s3_uri)
    assert len(lake.files("attempts")) == 2 and len(lake.files("evaluations")) == 2
    # November is closed: compacted into one object per table, the same answers read from it
    said = _candlebench(env, "compact", "--closed-days", "1")
    assert "attempts 2026-11: 2 partitions in one object" in said
    assert len(lake.files("attempts")) == 1
    assert json.loads(_candlebench(env, "query", ATTEMPTS, "--format", "json")) == answers[0][1]


WRITE = """
import sys
from pipeline.store.objects import ObjectLake
from tests.test_lake_s3 import _samples
ObjectLake(sys.argv[1]).write_partition("samples", _samples("2026-11-20", sys.argv[2:]), date="2026-11-20")
"""


@pytest.mark.parametrize("where", ["lake_upload.samples", "lake_publish.samples"])
def test_a_writer_killed_mid_replace_leaves_one_whole_partition(tmp_path, s3_uri, where):
    lake = ObjectLake(s3_uri)
    lake.write_partition("samples", _samples("2026-11-20", ["old-a", "old-b"]), date="2026-11-20")
    env = {**os.environ, "CANDLEBENCH_FAULT": f"kill:{where}", "CANDLEBENCH_FAULT_DIR": str(tmp_path)}
    killed = subprocess.run(
        [sys.executable, "-c", WRITE, s3_uri, "new-a", "new-b", "new-c"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert killed.returncode == -9 and (tmp_path / "hit").exists(), killed.stderr
    seen = sorted(lake.read_partition("samples", date="2026-11-20")["instance_id"])
    via_duckdb = sorted(
        Warehouse(tmp_path / "home", lake=lake).scan("SELECT instance_id FROM samples")["instance_id"]
    )
    # killed before the object was complete: the old partition; after: the new one, whole
    expected = ["old-a", "old-b"] if where == "lake_upload.samples" else ["new-a", "new-b", "new-c"]
    assert seen == via_duckdb == expected


def test_concurrent_writers_lose_no_rows_and_vacuum_keeps_the_newest(tmp_path, s3_uri):
    lake = ObjectLake(s3_uri)
    days = [(DAY - dt.timedelta(days=i)).isoformat() for i in range(8)]
    jobs = [(d, [f"{d}-t{i}" for i in range(3)]) for d in days] + [
        (days[0], [f"again-{i}" for i in range(5)])
    ]
    with ThreadPoolExecutor(max_workers=9) as pool:
        list(pool.map(lambda job: lake.write_partition("samples", _samples(*job), date=job[0]), jobs))
    counts = Warehouse(tmp_path / "home", lake=lake).scan(
        "SELECT date::VARCHAR AS date, count(*) AS n FROM samples GROUP BY 1 ORDER BY 1"
    )
    assert counts["date"].to_list() == sorted(days)
    # the partition written twice at once holds exactly one of the two writes, whole
    twice = counts.filter(pl.col("date") == days[0])["n"].item()
    assert twice in (3, 5) and counts.filter(pl.col("date") != days[0])["n"].to_list() == [3] * 7
    assert lake.vacuum() <= 1
    assert all(len(lake._versions(lake._folder("samples", date=d))) == 1 for d in days)


COMPACT = """
import sys
from pipeline.store.objects import ObjectLake
ObjectLake(sys.argv[1]).compact("samples", "2026-11")
"""


def test_compaction_keeps_every_answer_and_a_later_rewrite_wins(tmp_path, s3_uri):
    lake = ObjectLake(s3_uri)
    warehouse = Warehouse(tmp_path / "home", lake=lake)
    days = [dt.date(2026, 11, 1 + i).isoformat() for i in range(10)] + ["2026-12-01", "2026-12-02"]
    for i, day in enumerate(days):
        lake.write_partition("samples", _samples(day, [f"t{j}" for j in range(1 + i % 3)]), date=day)
    per_day = (
        "SELECT date::VARCHAR AS date, count(*) AS n, min(instance_id) AS first "
        "FROM samples GROUP BY 1 ORDER BY 1"
    )
    before = warehouse.scan(per_day)
    kept = lake.read_partition("samples", date=days[4])

    # killed after publishing the compacted object, before deleting what it covers: no double count
    env = {
        **os.environ,
        "CANDLEBENCH_FAULT": "kill:lake_compact.samples",
        "CANDLEBENCH_FAULT_DIR": str(tmp_path),
    }
    killed = subprocess.run(
        [sys.executable, "-c", COMPACT, s3_uri],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert killed.returncode == -9, killed.stderr
    assert warehouse.scan(per_day).equals(before)

    assert lake.compact("samples", "2026-11") == 0  # it was published: only its leftovers go
    november = [n for n in lake.fs.find(s3_uri) if "date=2026-11" in n]
    assert november == [] and warehouse.scan(per_day).equals(before)
    assert len(lake.files("samples")) == 3  # one object for November, December's two days loose
    assert lake.read_partition("samples", date=days[4]).equals(kept)
    assert lake.compact("samples", "2026-11") == 0  # nothing new to compact
    assert lake.compact("samples", "2026-12") == 2
    assert lake.compact("samples", "2026-12") == 0

    lake.write_partition("samples", _samples(days[4], [f"new{j}" for j in range(5)]), date=days[4])
    after = warehouse.scan(per_day)
    assert after.filter(pl.col("date") == days[4]).rows() == [(days[4], 5, "new0")]
    assert after.filter(pl.col("date") != days[4]).equals(before.filter(pl.col("date") != days[4]))
    assert lake.read_partition("samples", date=days[4]).height == 5
    # a one-day window reads the month's object and that day's version, not December's
    assert len(lake.files("samples", [days[4]])) == 2
    assert lake.compact("samples", "2026-11") == 10
    assert warehouse.scan(per_day).equals(after) and len(lake.files("samples")) == 2
