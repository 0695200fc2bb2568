"""The lake replaces partitions atomically and validates every write."""

import datetime as dt

import polars as pl
import pytest

from pipeline.store.warehouse import Warehouse


def samples(day: dt.date, n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "date": [day] * n,
            "instance_id": [f"t{i}" for i in range(n)],
            "position": list(range(n)),
            "sample_seed": [1] * n,
            "run_id": ["r"] * n,
            "config_hash": ["c"] * n,
        }
    )


def test_rewriting_a_partition_replaces_it(tmp_path):
    warehouse = Warehouse(tmp_path)
    lake = warehouse.lake
    day = dt.date(2026, 1, 1)
    lake.write_partition("samples", samples(day, 5), date=day)
    lake.write_partition("samples", samples(day, 3), date=day)
    assert lake.read_partition("samples", date=day).height == 3
    assert warehouse.query("SELECT count(*) AS n FROM samples")["n"][0] == 3
    assert [p.name for p in lake.partition_path("samples", date=day).parent.iterdir()] == ["part.parquet"]


def test_invalid_frame_is_rejected_and_old_partition_kept(tmp_path):
    warehouse = Warehouse(tmp_path)
    lake = warehouse.lake
    day = dt.date(2026, 1, 1)
    lake.write_partition("samples", samples(day, 4), date=day)
    broken = samples(day, 2).with_columns(position=pl.lit(-1))
    with pytest.raises(Exception, match="position"):
        lake.write_partition("samples", broken, date=day)
    assert lake.read_partition("samples", date=day).height == 4


def test_unknown_table_is_named(tmp_path):
    with pytest.raises(ValueError, match="unknown lake table 'nope'"):
        Warehouse(tmp_path).lake.partition_path("nope", date="x")


HOLD_THE_WRITER = """
import sys, time
from pathlib import Path
from pipeline.store.warehouse import Warehouse
home, ready, release = (Path(p) for p in sys.argv[1:4])
with Warehouse(home).writer() as connection:
    connection.execute("INSERT INTO tallies VALUES (2)")  # committed, not yet published
    ready.write_text("holding")
    while not release.exists():
        time.sleep(0.05)
"""


def wait_for(condition, what: str, timeout_s: float = 120.0) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_readers_never_wait_for_a_writer_in_another_process(tmp_path):
    import subprocess
    import sys

    warehouse = Warehouse(tmp_path / "home")
    with warehouse.writer() as connection:
        connection.execute("CREATE TABLE tallies (n INTEGER)")
        connection.execute("INSERT INTO tallies VALUES (1)")
    ready, release = tmp_path / "ready", tmp_path / "release"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_WRITER, str(warehouse.root), str(ready), str(release)]
    )
    try:
        wait_for(lambda: ready.exists() or holder.poll() is not None, "the writer to hold the lock")
        assert holder.poll() is None, "the writer process died"
        # the last published write, at once, while the writer holds DuckDB's lock
        assert warehouse.query("SELECT sum(n) AS n FROM tallies")["n"][0] == 1
        cli = subprocess.run(
            [
                sys.executable,
                "-m",
                "pipeline.cli",
                "query",
                "SELECT count(*) AS c FROM tallies",
                "--format",
                "csv",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env={**__import__("os").environ, "CANDLEBENCH_HOME": str(warehouse.root)},
        )
        assert cli.returncode == 0 and cli.stdout.splitlines() == ["c", "1"], cli.stderr
        with warehouse.reader() as reading:  # a reader open does not hold the writer up either
            release.write_text("go")
            assert holder.wait(120) == 0
            assert reading.execute("SELECT sum(n) FROM tallies").fetchone() == (1,)
    finally:
        release.write_text("go")
        holder.wait(120)
    assert warehouse.query("SELECT sum(n) AS n FROM tallies")["n"][0] == 3  # published when it let go


def test_a_moved_home_and_a_quote_in_its_path_read_their_own_lake(tmp_path):
    import shutil

    first = Warehouse(tmp_path / "it's home")
    day = dt.date(2026, 1, 1)
    first.lake.write_partition("samples", samples(day, 4), date=day)
    with first.writer() as connection:  # an aggregate built over the lake's view
        connection.execute("CREATE TABLE sampled AS SELECT count(*) AS n FROM samples")
    moved = Warehouse(tmp_path / "restored")
    shutil.copytree(first.root, moved.root)
    shutil.rmtree(first.root)
    moved.lake.write_partition("samples", samples(day, 2), date=day)  # the copy is its own home now
    assert moved.query("SELECT count(*) AS n FROM samples")["n"][0] == 2
    assert moved.query("SELECT n FROM sampled")["n"][0] == 4
    with moved.writer() as connection:
        assert connection.execute("SELECT count(*) FROM samples").fetchone() == (2,)


def test_a_bad_query_is_one_line_naming_it(tmp_path, capsys, monkeypatch):
    from pipeline.cli import main

    warehouse = Warehouse(tmp_path)
    with warehouse.writer() as connection:
        connection.execute("CREATE TABLE candles (n INTEGER)")
    monkeypatch.setenv("CANDLEBENCH_HOME", str(tmp_path))
    assert main(["query", "SELECT nope FROM candles"]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("candlebench query: query 'SELECT nope FROM candles': ") and len(err.splitlines()) == 1
    )


@pytest.fixture
def small_disk(tmp_path):
    """A 512 KiB tmpfs: a full disk for real (needs root, as CI has)."""
    import os
    import subprocess

    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"cannot mount a tmpfs in CI: {made.stderr.decode().strip()}")
        pytest.skip(f"a full-disk test needs to mount a tmpfs (root): {made.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_is_named_and_the_stored_partition_kept(small_disk):
    from pipeline.store.lake import DiskFull

    lake = Warehouse(small_disk).lake
    day = dt.date(2026, 1, 1)
    lake.write_partition("samples", samples(day, 3), date=day)
    import secrets

    huge = samples(day, 20_000).with_columns(  # incompressible: 1.3 MB of random ids
        instance_id=pl.Series([secrets.token_hex(32) for _ in range(20_000)])
    )
    with pytest.raises(
        DiskFull,
        match=r"disk full: cannot write samples partition .*date=2026-01-01 "
        r"\(\d+ bytes free\); the stored partition is unchanged",
    ):
        lake.write_partition("samples", huge, date=day)
    assert lake.read_partition("samples", date=day).height == 3
    assert not [p for p in small_disk.rglob(".part-*")]  # no half-written file left behind


def test_a_windowed_writer_reads_only_its_days_files(tmp_path):
    """An incremental refresh costs O(its window), not O(history): another day's file is never
    opened, so even a damaged one elsewhere in the lake does not touch it."""
    warehouse = Warehouse(tmp_path)
    lake = warehouse.lake
    days = [dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(5)]
    for i, day in enumerate(days):
        lake.write_partition("samples", samples(day, i + 1), date=day)
    lake.partition_path("samples", date=days[0]).write_bytes(b"not parquet")
    with warehouse.writer(dates=[days[3].isoformat()]) as connection:
        assert connection.execute("SELECT count(*) FROM samples").fetchone()[0] == 4
    assert lake.files("samples", [days[3].isoformat(), days[4].isoformat()]) == [
        str(lake.partition_path("samples", date=d)) for d in days[3:]
    ]
    with pytest.raises(Exception, match="not parquet|magic|Parquet"), warehouse.writer() as connection:
        connection.execute("SELECT count(*) FROM samples").fetchone()
