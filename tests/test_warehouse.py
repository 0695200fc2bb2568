"""The lake replaces partitions atomically and validates every write."""

import datetime as dt

import polars as pl
import pytest

from pipeline.store.warehouse import Warehouse


def samples(day: dt.date, n: int) -> pl.DataFrame:
    return pl.DataFrame({
        "date": [day] * n, "instance_id": [f"t{i}" for i in range(n)], "position": list(range(n)),
        "sample_seed": [1] * n, "run_id": ["r"] * n, "config_hash": ["c"] * n,
    })


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
