"""The suite's tasks and the day's sample."""

import datetime as dt

import dagster as dg
import polars as pl

from pipeline.partitions import date
from pipeline.resources import TrackerResource


@dg.asset(
    group_name="tasks",
    kinds={"parquet"},
    owners=["team:evals"],
    description="The suite's tasks in SWE-Bench-Pro's row shape, validated and stored in the lake.",
)
def task_catalog(context: dg.AssetExecutionContext, tracker: TrackerResource) -> dg.MaterializeResult:
    engine = tracker.open()
    tasks = list(engine.tasks.values())
    frame = pl.DataFrame([
        {**t.as_row(), "suite": engine.suite.name, "difficulty": engine.suite.difficulty(t.instance_id)}
        for t in tasks
    ])
    engine.warehouse.write_partition("tasks", frame, suite=engine.suite.name)
    by_repo = frame.group_by("repo").len().sort("repo")
    return dg.MaterializeResult(metadata={
        "tasks": len(tasks),
        "tasks_per_repo": dg.MetadataValue.json(dict(by_repo.iter_rows())),
    })


@dg.asset(
    group_name="tasks",
    kinds={"parquet"},
    owners=["team:evals"],
    partitions_def=date,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[task_catalog],
    description="The day's tasks: a fixed panel, stratified by repository, reproducible from a seed.",
)
def daily_sample(context: dg.AssetExecutionContext, tracker: TrackerResource) -> dg.MaterializeResult:
    engine = tracker.open()
    days = context.partition_keys
    for day in days:
        chosen = engine.sample(dt.date.fromisoformat(day))
        frame = pl.DataFrame({
            "date": [dt.date.fromisoformat(day)] * len(chosen),
            "instance_id": [t.instance_id for t in chosen],
            "position": list(range(len(chosen))),
            "sample_seed": [engine.config.sample_seed] * len(chosen),
            "run_id": [context.run.run_id] * len(chosen),
            "config_hash": [engine.config.digest] * len(chosen),
        })
        engine.warehouse.write_partition("samples", frame, date=day)
    return dg.MaterializeResult(metadata={"days": len(days), "tasks_per_day": len(chosen)})
