"""Agent attempts, their grading, and the daily harness controls."""

import datetime as dt
from collections import Counter

import dagster as dg
import polars as pl

from assets.catalog import daily_sample, task_catalog
from pipeline import clock
from pipeline.agents import EXIT_CLASSES
from pipeline.grading import OUTCOMES, Verdict
from pipeline.partitions import date, date_by_subject, keys_of
from pipeline.resources import TrackerResource
from pipeline.tracker import attempts_frame

EXTRA_TRIALS_TAG = "candlebench/extra_trials"  # set by the confirmation sensor


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
    kept = engine.warehouse.read_partition("attempts", subject=subject, date=day) if extra else None
    if kept is not None:  # a confirmation: keep the day's trials and add `extra` more
        first = int(kept["trial"].max()) + 1
        attempts = engine.run_attempts(subject, dt.date.fromisoformat(day), range(first, first + extra))
    else:
        attempts = engine.run_attempts(subject, dt.date.fromisoformat(day))
    frame = attempts_frame(attempts, context.run.run_id, engine.config.digest, engine.config.sample_seed)
    if kept is not None:
        frame = pl.concat([kept, frame], how="diagonal_relaxed")
    engine.warehouse.write_partition("attempts", frame, subject=subject, date=day)
    versions = sorted({a.agent_version for a in attempts})
    exits = Counter(a.exit_class for a in attempts)
    return dg.MaterializeResult(metadata={
        "attempts": len(attempts),
        "agent_version": ", ".join(versions),
        "cost_usd": round(sum(a.cost_usd for a in attempts), 2),
        "tokens": sum(a.input_tokens + a.output_tokens for a in attempts),
        "empty_patches": sum(not a.patch.strip() for a in attempts),
        **{f"exit_{name}": exits[name] for name in EXIT_CLASSES},
    })


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
    attempts = engine.warehouse.read_partition("attempts", subject=subject, date=day)
    if attempts is None:
        raise dg.Failure(f"no attempts stored for {subject} on {day}: materialize agent_attempts first")
    rows = list(attempts.iter_rows(named=True))
    # Attempts never launched (daily cost cap) are recorded as skipped, not graded as failures.
    launched = [row for row in rows if row["exit_class"] != "skipped"]
    graded = engine.grade([(engine.tasks[r["instance_id"]], r["patch"]) for r in launched],
                          trusted=engine.trusted(subject))
    verdict_of = {row["attempt_id"]: v for row, v in zip(launched, graded, strict=True)}
    verdicts = [verdict_of.get(row["attempt_id"]) or skipped_verdict(engine, row) for row in rows]
    frame = pl.DataFrame([
        {
            "attempt_id": row["attempt_id"], "date": row["date"], "subject": subject,
            "trial": row["trial"], "instance_id": row["instance_id"], "outcome": v.outcome,
            "resolved": v.resolved, "apply_step": v.apply_step, "f2p_passed": v.f2p_passed,
            "f2p_total": v.f2p_total, "p2p_passed": v.p2p_passed, "p2p_total": v.p2p_total,
            "grade_key": v.grade_key, "cached": v.cached, "artifact_dir": v.artifact_dir,
            "grader_version": v.grader_version, "env_fingerprint": v.env_fingerprint,
            "sandbox": engine.grader.sandbox.name, "reason": v.reason, "run_id": context.run.run_id,
            "config_hash": row["config_hash"],
        }
        for row, v in zip(rows, verdicts, strict=True)
    ])
    engine.warehouse.write_partition("evaluations", frame, subject=subject, date=day)
    outcomes = Counter(v.outcome for v in verdicts)
    counted = len(verdicts) - outcomes["harness_error"] - outcomes["skipped"]
    return dg.MaterializeResult(metadata={
        "pass_rate": outcomes["resolved"] / counted if counted else 0.0,
        "graded": counted,
        "cached": sum(v.cached for v in verdicts),
        "sandbox": engine.grader.sandbox.name,
        **{f"outcome_{name}": outcomes[name] for name in (*OUTCOMES, "skipped")},
    })


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
    today = clock.today(engine.config.timezone).isoformat()
    broken = 0
    # Latest day first: today's fresh grading refreshes the cache the earlier days reuse.
    for day in sorted(context.partition_keys, reverse=True):
        tasks = engine.sample(dt.date.fromisoformat(day))
        fresh = day >= today
        gold = engine.grade([(t, t.patch) for t in tasks], trusted=True, use_cache=not fresh)
        empty = engine.grade([(t, "") for t in tasks], trusted=True, run_empty=True, use_cache=not fresh)
        rows = []
        for control, verdicts in (("gold", gold), ("empty", empty)):
            for task, v in zip(tasks, verdicts, strict=True):
                ok = v.resolved if control == "gold" else (not v.resolved and v.outcome != "harness_error")
                broken += not ok
                rows.append({
                    "date": dt.date.fromisoformat(day), "instance_id": task.instance_id,
                    "control": control, "outcome": v.outcome, "ok": ok, "cached": v.cached,
                    "artifact_dir": v.artifact_dir, "grader_version": v.grader_version,
                    "env_fingerprint": v.env_fingerprint, "run_id": context.run.run_id,
                    "config_hash": engine.config.digest,
                })
        engine.warehouse.write_partition("controls", pl.DataFrame(rows), date=day)
    return dg.MaterializeResult(metadata={"days": len(context.partition_keys), "broken_controls": broken})


def skipped_verdict(engine, row: dict) -> Verdict:
    """An attempt never launched (the daily cost cap, a replay with no trial for it): its reason."""
    reason = f"not launched: {row['detail']}" if row.get("detail") else "not launched"
    return engine.grader.not_run(engine.tasks[row["instance_id"]], "skipped", reason)
