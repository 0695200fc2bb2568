"""A partition counts as graded only when its evaluations grade exactly its stored attempts."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import polars as pl

from pipeline import clock
from pipeline.config import load_config
from pipeline.orchestration.history import plan_history
from pipeline.store.warehouse import Warehouse


def stored(lake, table: str, ids: list[str], day: str) -> None:
    path = lake.partition_path(table, subject="sim-codex", date=day)
    path.parent.mkdir(parents=True, exist_ok=True)
    pl.DataFrame({"attempt_id": ids}).write_parquet(path)


def test_a_rerun_killed_between_its_two_writes_is_planned_again(tmp_path, monkeypatch):
    monkeypatch.setenv("CANDLEBENCH_HOME", str(tmp_path))
    config = load_config()
    today = clock.today(config.timezone)
    days = [(today - dt.timedelta(days=n)).isoformat() for n in (2, 1)]
    lake = Warehouse(tmp_path).lake
    stored(lake, "attempts", ["a1", "a2"], days[0])  # graded as stored
    stored(lake, "evaluations", ["a1", "a2"], days[0])
    stored(lake, "attempts", ["b1", "b2"], days[1])  # new attempts stored, then killed before grading
    stored(lake, "evaluations", ["a1", "a2"], days[1])
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("subject", ["sim-codex"])
        for day in days:
            key = dg.MultiPartitionKey({"date": day, "subject": "sim-codex"})
            for asset in ("agent_attempts", "patch_evaluations"):
                instance.report_runless_asset_event(dg.AssetMaterialization(asset, partition=key))
        plan = plan_history(instance, config, today - dt.timedelta(days=1), 2, ["sim-codex"])
    assert [str(k) for k in plan.partitions] == [f"{days[1]}|sim-codex"] and plan.kept == 1
