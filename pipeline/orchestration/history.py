"""Build a window of history through real Dagster runs: in this process, or queued for the daemon.

One plan decides what a window needs: date-only stages run once for the whole window
(single-run backfills); attempts and grading run once per `date x subject` partition, as the
daily schedule would have run them, skipping partitions already graded (agents are paid once).
`build_history` executes the plan in process, talking about its progress; `queue_history`
hands the same plan to the daemon as one asset backfill, the way the UI's "Materialize" does.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import yaml
from dagster._core.definitions.repository_definition.valid_definitions import SINGLETON_REPOSITORY_NAME
from dagster._core.storage.tags import REPOSITORY_LABEL_TAG
from dagster._utils.error import SerializableErrorInfo

from pipeline import clock
from pipeline.config import PROJECT_ROOT, home, load_config, pin_demo_config, profiles
from pipeline.orchestration.plan import Plan, plan_history
from pipeline.orchestration.pools import size_pools
from pipeline.orchestration.runs import reap_dead_runs
from pipeline.store.sweep import sweep

# Dagster's console stays quiet: a failed step is one line of ours (its stack trace is in the run's
# event log, the UI) and our own warnings are printed from that log (`build_history`).
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def repository_label() -> str:
    """The label the UI files runs under (`__repository__@<location>`), from workspace.yaml.

    In-process runs carry it so the job pages and the Overview list them like daemon runs.
    """
    workspace = yaml.safe_load((PROJECT_ROOT / "workspace.yaml").read_text())
    location = workspace["load_from"][0]["python_module"]["location_name"]
    return f"{SINGLETON_REPOSITORY_NAME}@{location}"


@dataclass
class Timings:
    """Wall seconds per stage, how much of it Dagster spent outside our steps, and what failed."""

    stages: dict[str, float] = field(default_factory=dict)
    steps: dict[str, float] = field(default_factory=dict)
    runs: int = 0
    failures: list[str] = field(default_factory=list)

    def add(self, stage: str, result: dg.ExecuteInProcessResult, wall: float) -> None:
        self.stages[stage] = self.stages.get(stage, 0.0) + wall
        inside = sum(
            e.event_specific_data.duration_ms / 1000
            for e in result.all_events
            if e.event_type_value == "STEP_SUCCESS"
        )
        self.steps[stage] = self.steps.get(stage, 0.0) + inside
        self.runs += 1

    @property
    def dagster_overhead_s(self) -> float:
        return sum(self.stages.values()) - sum(self.steps.values())


def prepare_dagster_home() -> Path:
    """DAGSTER_HOME = <home>/dagster, holding a link to the deployment profile's dagster.yaml.

    Dagster reads `$DAGSTER_HOME/dagster.yaml`; linking (not copying) keeps the repository's
    file the one that configures the instance. The profile is `$CANDLEBENCH_PROFILE` (`local`,
    the repository's dagster.yaml, when unset); switching it re-points the link. A dagster.yaml
    the user put there themselves (a file, not our link) is theirs and kept. A profile whose
    server does not answer is a ConfigError before Dagster's own retry loop starts.
    """
    chosen = profiles.profile()
    readiness = profiles.check(chosen)
    # Pin the candlebench home too: Dagster's processes may start in another folder.
    os.environ["CANDLEBENCH_HOME"] = str(home())
    dagster_home = Path(os.environ.get("DAGSTER_HOME") or home() / "dagster")
    dagster_home.mkdir(parents=True, exist_ok=True)
    link, target = dagster_home / "dagster.yaml", chosen.instance_yaml
    if link.is_symlink() and link.resolve() != target.resolve():
        link.unlink()
        print(f"instance: profile {readiness}", file=sys.stderr)
    if not link.exists() and not link.is_symlink():
        link.symlink_to(target)
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    if swept := sweep(home()):
        print(swept, file=sys.stderr)
    with dg.DagsterInstance.get() as instance:
        if reaped := reap_dead_runs(instance):
            print(
                f"marked {len(reaped)} runs failed whose process died "
                f"({', '.join(r[:8] for r in reaped)}); their pool slots are free again",
                file=sys.stderr,
            )
        size_pools(instance, _settings())
    return dagster_home


def _settings():
    """The tracking config for sizing pools, or None when it cannot be read (reported elsewhere)."""
    from pipeline.config import ConfigError

    try:
        return load_config()
    except ConfigError:
        return None


def step_error(error: SerializableErrorInfo) -> str:
    """A failed step's error as one line: our exception's message, without Dagster's wrapper or
    the exception's module path."""
    while error.cause is not None and error.cls_name == "DagsterExecutionStepExecutionError":
        error = error.cause
    first = (error.message.strip().splitlines() or [error.cls_name or "the step failed"])[0]
    named, _, said = first.partition(": ")
    return said if said and named.rpartition(".")[2] == error.cls_name else first


def _duration(seconds: float) -> str:
    return str(dt.timedelta(seconds=round(seconds)))


def build_history(
    end: dt.date,
    days: int | None = None,
    instance: dg.DagsterInstance | None = None,
    progress: Callable[[str], None] = print,
    subjects: list[str] | None = None,
    regrade_only: bool = False,
    redo: bool = False,
) -> Timings:
    """Run every stage for `days` days ending `end`, through Dagster runs on `instance`.

    A failed run is recorded in `Timings.failures` and the others go on: one subject's failure
    never blocks the other subjects' partitions or the window's aggregates.
    """
    from pipeline.definitions import defs
    from pipeline.orchestration.resources import TrackerResource

    config = load_config()
    instance = instance or dg.DagsterInstance.get()
    plan = plan_history(instance, config, end, days or config.history_days, subjects, regrade_only, redo)
    known = set(instance.get_dynamic_partitions("subject"))
    instance.add_dynamic_partitions("subject", [s for s in plan.subjects if s not in known])
    sandbox = TrackerResource().open().grader.sandbox.name
    timings, label = Timings(), repository_label()

    def run(stage: str, job: str, **options) -> bool:
        began = time.monotonic()
        result = defs.resolve_job_def(job).execute_in_process(
            instance=instance,
            run_config=QUIET,
            raise_on_error=False,
            tags={REPOSITORY_LABEL_TAG: label, **options.pop("tags", {})},
            **options,
        )
        timings.add(stage, result, time.monotonic() - began)
        for entry in instance.all_logs(result.run_id):
            if not entry.is_dagster_event and entry.level >= logging.WARNING:
                progress(f"      warning: {entry.user_message}")
        if not result.success:
            failed = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
            reason = step_error(failed[0].event_specific_data.error) if failed else "the run failed"
            where = options.get("partition_key", f"{plan.start}..{plan.end}")
            timings.failures.append(f"{stage} {where}: {reason}")
            progress(f"      FAILED {where}: {reason} (run {result.run_id})")
        return result.success

    def stage(number: int, text: str, job: str, **options) -> None:
        progress(f"[{number}/5] {text}")
        began = time.monotonic()
        run(text.split(",")[0], job, **options)
        progress(f"      done in {time.monotonic() - began:.1f} s")

    progress(
        f"history {plan.start} .. {plan.end}: {plan.days} days x {len(plan.subjects)} subjects "
        f"({', '.join(plan.subjects)}); grading in the {sandbox} sandbox (sandbox: {config.sandbox})"
    )
    stage(1, "task catalog", "catalog_job")
    stage(2, f"sample and harness controls, {plan.days} days in one run", "daily_job", tags=plan.window_tags)
    what = "re-grading stored attempts" if regrade_only else "attempts and grading"
    progress(f"[3/5] {what}: {len(plan.partitions)} partitions to run, {plan.kept} already graded kept")
    began, last_note = time.monotonic(), time.monotonic()
    for index, key in enumerate(plan.partitions, 1):
        run(what, "regrade_job" if regrade_only else "evaluation_job", partition_key=key)
        elapsed = time.monotonic() - began
        if index == len(plan.partitions) or time.monotonic() - last_note > 20 or index % 25 == 0:
            eta = elapsed / index * (len(plan.partitions) - index)
            progress(
                f"      {index}/{len(plan.partitions)} ({index / len(plan.partitions):.0%}), "
                f"{_duration(elapsed)} elapsed, ETA {_duration(eta)}"
            )
            last_note = time.monotonic()
    stage(4, f"candles, {plan.days} days in one run", "candles_job", tags=plan.window_tags)
    stage(5, "changepoints and report", "report_job")
    if timings.failures:
        progress(f"{len(timings.failures)} of {timings.runs} runs failed; the others' results are stored")
    return timings


def queue_history(
    instance: dg.DagsterInstance,
    end: dt.date,
    days: int,
    subjects: list[str] | None = None,
    regrade_only: bool = False,
    redo: bool = False,
) -> tuple[str | None, Plan]:
    """Queue the plan as one asset backfill for the daemon, as the UI's "Materialize" does
    (no backfill, None, when every partition of the window is kept).

    The window's sample and controls run as one run (single-run policy), attempts and grading
    once per partition; the backfill's status shows failures. Candles are not in it: an asset
    backfill requests them as their parents finish, in as many runs as waves; the aggregation
    sensor waits for the backfill to end and aggregates the window in one run, then changepoints
    and the report.
    """
    from dagster._core.definitions.assets.graph.asset_graph_subset import AssetGraphSubset
    from dagster._core.definitions.events import AssetKeyPartitionKey
    from dagster._core.execution.backfill import PartitionBackfill
    from dagster._core.utils import make_new_backfill_id
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget

    config = load_config()
    plan = plan_history(instance, config, end, days, subjects, regrade_only, redo)
    known = set(instance.get_dynamic_partitions("subject"))
    instance.add_dynamic_partitions("subject", [s for s in plan.subjects if s not in known])
    window = [(plan.start + dt.timedelta(days=i)).isoformat() for i in range(plan.days)]
    per_partition = ["patch_evaluations"] if regrade_only else ["agent_attempts", "patch_evaluations"]
    targets = {
        AssetKeyPartitionKey(dg.AssetKey(name), str(key)) for key in plan.partitions for name in per_partition
    }
    if not regrade_only:
        targets |= {
            AssetKeyPartitionKey(dg.AssetKey(n), d)
            for n in ("daily_sample", "harness_controls")
            for d in window
        }
    if not targets:
        return None, plan
    target = WorkspaceFileTarget(paths=[str(PROJECT_ROOT / "workspace.yaml")])
    with WorkspaceProcessContext(instance, target) as workspace:
        asset_graph = workspace.create_request_context().asset_graph
        backfill = PartitionBackfill.from_asset_graph_subset(
            backfill_id=make_new_backfill_id(),
            backfill_timestamp=time.time(),
            tags={"candlebench/trigger": "backfill"},
            dynamic_partitions_store=instance,
            asset_graph_subset=AssetGraphSubset.from_asset_partition_set(targets, asset_graph),
            title=f"candlebench backfill {plan.start}..{plan.end}",
            description=None,
            run_config=None,
        )
        instance.add_backfill(backfill)
    return backfill.backfill_id, plan


def build_demo(today: dt.date | None = None, progress: Callable[[str], None] = print) -> Timings:
    """Pin the demo config in the home, then build its history ending `today`."""
    prepare_dagster_home()
    pin_demo_config(today or clock.today())
    with dg.DagsterInstance.get() as instance:
        return build_history(
            today or clock.today(load_config().timezone), instance=instance, progress=progress
        )
