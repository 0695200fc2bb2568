"""Agent attempts, their grading, and the daily harness controls."""

import datetime as dt
from collections import Counter

import dagster as dg
import polars as pl

from assets.catalog import daily_sample, task_catalog
from pipeline.agents import ExitClass
from pipeline.grading import Outcome
from pipeline.orchestration.partitions import date, date_by_subject, keys_of
from pipeline.orchestration.resources import TrackerResource
from pipeline.store.rows import attempts_frame, controls_frame, evaluations_frame

EXTRA_TRIALS_TAG = "candlebench/extra_trials"  # set by the confirmation sensor: more trials of a day run
WARNING_TRIALS_TAG = "candlebench/warning_trials"  # set by the daily schedule: a day's run takes more
WARNING_REASON_TAG = "candlebench/warning_reason"


@dg.asset(
    group_name="agents",
    kinds={"parquet"},
    owners=["team:evals"],
    partitions_def=date_by_subject,
    deps=[daily_sample],
    description="Each subject solves each sampled task `trials` times. Expensive: never "
    "recomputed implicitly; re-grading history re-runs evaluations only.",
)
def agent_attempts(context: dg.AssetExecutionContext, tracker: TrackerResource) -> dg.MaterializeResult:
    day, subject = keys_of(context)
    engine = tracker.open()
    extra = int(context.run.tags.get(EXTRA_TRIALS_TAG, 0))
    warning = int(context.run.tags.get(WARNING_TRIALS_TAG, 0))
    kept = engine.lake.read_partition("attempts", subject=subject, date=day) if extra else None
    if kept is not None:  # a confirmation: keep the day's trials and add `extra` more
        first = int(kept["trial"].max()) + 1
        attempts = engine.run_attempts(subject, dt.date.fromisoformat(day), range(first, first + extra))
    else:  # the warning's extra trials are more trials of this run, numbered after the ordinary ones
        attempts = engine.run_attempts(
            subject, dt.date.fromisoformat(day), range(engine.config.subject(subject).trials + warning)
        )
    frame = attempts_frame(attempts, context.run.run_id, engine.config.digest, engine.config.sample_seed)
    if kept is not None:
        frame = pl.concat([kept, frame], how="diagonal_relaxed")
    engine.lake.write_partition("attempts", frame, subject=subject, date=day)
    versions = sorted({a.agent_version for a in attempts})
    exits = Counter(a.exit_class for a in attempts)
    return dg.MaterializeResult(
        metadata={
            "attempts": len(attempts),
            "warning_trials": warning,
            "agent_version": ", ".join(versions),
            "cost_usd": round(sum(a.cost_usd for a in attempts), 2),
            "tokens": sum(a.input_tokens + a.output_tokens for a in attempts),
            "empty_patches": sum(not a.patch.strip() for a in attempts),
            **{f"exit_{name}": exits[name] for name in ExitClass},
        }
    )


@dg.asset(
    group_name="grading",
    kinds={"parquet"},
    owners=["team:evals"],
    partitions_def=date_by_subject,
    deps=[agent_attempts],
    pool="sandbox",
    description="Grades every attempt's patch in a sandbox with SWE-bench's rules. Cheap to redo; "
    "identical (task, patch, environment, grader) are graded once.",
)
def patch_evaluations(context: dg.AssetExecutionContext, tracker: TrackerResource) -> dg.MaterializeResult:
    day, subject = keys_of(context)
    engine = tracker.open()
    attempts = engine.lake.read_partition("attempts", subject=subject, date=day)
    if attempts is None:
        raise dg.Failure(f"no attempts stored for {subject} on {day}: materialize agent_attempts first")
    rows = list(attempts.iter_rows(named=True))
    verdicts = engine.grade_attempts(subject, rows)
    sandbox = engine.grader.sandbox.name
    frame = evaluations_frame(rows, verdicts, sandbox, context.run.run_id)
    engine.lake.write_partition("evaluations", frame, subject=subject, date=day)
    outcomes = Counter(Outcome(v.outcome) for v in verdicts)
    counted = sum(n for o, n in outcomes.items() if o.counted)
    return dg.MaterializeResult(
        metadata={
            "pass_rate": outcomes[Outcome.RESOLVED] / counted if counted else 0.0,
            "graded": counted,
            "cached": sum(v.cached for v in verdicts),
            "sandbox": sandbox,
            **{f"outcome_{o}": outcomes[o] for o in Outcome},
        }
    )


@dg.asset(
    group_name="grading",
    kinds={"parquet"},
    owners=["team:evals"],
    partitions_def=date,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[task_catalog],
    pool="sandbox",
    description="The gold and the empty patch of every sampled task: gold must resolve, empty must "
    "not. Tasks that break this are excluded for the day. Graded fresh for today; past days "
    "reuse the cached verdict for the same environment (marked cached).",
)
def harness_controls(context: dg.AssetExecutionContext, tracker: TrackerResource) -> dg.MaterializeResult:
    engine = tracker.open()
    broken = 0
    # Latest day first: today's fresh grading refreshes the cache the earlier days reuse.
    for day in sorted(context.partition_keys, reverse=True):
        tasks, gold, empty = engine.grade_controls(dt.date.fromisoformat(day))
        frame, failed = controls_frame(
            dt.date.fromisoformat(day), tasks, gold, empty, context.run.run_id, engine.config.digest
        )
        engine.lake.write_partition("controls", frame, date=day)
        broken += failed
    return dg.MaterializeResult(metadata={"days": len(context.partition_keys), "broken_controls": broken})
