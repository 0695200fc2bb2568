"""The suite's tasks and the day's sample."""

import datetime as dt

import dagster as dg

from pipeline.orchestration.partitions import date
from pipeline.orchestration.resources import TrackerResource
from pipeline.store.rows import sample_frame, task_frame
from pipeline.store.sweep import sweep


@dg.asset(
    group_name="tasks",
    kinds={"parquet"},
    owners=["team:evals"],
    description="The suite's tasks in SWE-Bench-Pro's row shape, validated and stored in the lake.",
)
def task_catalog(context: dg.AssetExecutionContext, tracker: TrackerResource) -> dg.MaterializeResult:
    engine = tracker.open()
    tasks = list(engine.tasks.values())
    frame = task_frame(tasks, engine.suite.name, engine.suite.difficulty)
    engine.lake.write_partition("tasks", frame, suite=engine.suite.name)
    by_repo = frame.group_by("repo").len().sort("repo")
    return dg.MaterializeResult(
        metadata={"tasks": len(tasks), "tasks_per_repo": dg.MetadataValue.json(dict(by_repo.iter_rows()))}
    )


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
    if swept := sweep(engine.home):  # each day's work starts clean of what killed runs left
        context.log.info(str(swept))
    days = context.partition_keys
    for day in days:
        chosen = engine.sample(dt.date.fromisoformat(day))
        frame = sample_frame(
            dt.date.fromisoformat(day),
            chosen,
            engine.config.sample_seed,
            context.run.run_id,
            engine.config.digest,
        )
        engine.lake.write_partition("samples", frame, date=day)
    return dg.MaterializeResult(metadata={"days": len(days), "tasks_per_day": len(chosen)})
