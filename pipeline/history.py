"""Build a window of history through real Dagster runs on the instance, in process.

Date-only stages run once for the whole window (single-run backfills); attempts and grading run
once per `date x subject` partition, as the daily schedule would have run them.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from pipeline.config import home, load_config, pin_demo_config
from pipeline.partitions import date_key

REPO_ROOT = Path(__file__).resolve().parent.parent
# The console shows warnings only; every event still lands in the instance's event log (the UI).
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class Timings:
    """Wall seconds per stage, and how much of it Dagster spent outside our steps."""

    stages: dict[str, float] = field(default_factory=dict)
    steps: dict[str, float] = field(default_factory=dict)
    runs: int = 0

    def add(self, stage: str, result: dg.ExecuteInProcessResult, wall: float) -> None:
        self.stages[stage] = self.stages.get(stage, 0.0) + wall
        inside = sum(
            e.event_specific_data.duration_ms / 1000
            for e in result.all_events if e.event_type_value == "STEP_SUCCESS"
        )
        self.steps[stage] = self.steps.get(stage, 0.0) + inside
        self.runs += 1

    @property
    def dagster_overhead_s(self) -> float:
        return sum(self.stages.values()) - sum(self.steps.values())


def prepare_dagster_home() -> Path:
    """DAGSTER_HOME = <home>/dagster, holding a link to the repository's dagster.yaml.

    Dagster reads `$DAGSTER_HOME/dagster.yaml`; linking (not copying) keeps the repository's
    file the one that configures the instance.
    """
    # Pin the candlebench home too: Dagster's processes may start in another folder.
    os.environ["CANDLEBENCH_HOME"] = str(home())
    dagster_home = Path(os.environ.get("DAGSTER_HOME") or home() / "dagster")
    dagster_home.mkdir(parents=True, exist_ok=True)
    link = dagster_home / "dagster.yaml"
    if not link.exists() and not link.is_symlink():
        link.symlink_to(REPO_ROOT / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    return dagster_home


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

    Partitions already graded are kept unless `redo`: attempts are expensive and never
    recomputed implicitly. `regrade_only` re-grades stored attempts without asking any agent.
    """
    from pipeline.definitions import defs

    config = load_config()
    days = days or config.history_days
    start = end - dt.timedelta(days=days - 1)
    instance = instance or dg.DagsterInstance.get()
    subjects = subjects or [s.name for s in config.subjects]
    known = set(instance.get_dynamic_partitions("subject"))
    instance.add_dynamic_partitions("subject", [s for s in subjects if s not in known])
    window = {ASSET_PARTITION_RANGE_START_TAG: start.isoformat(),
              ASSET_PARTITION_RANGE_END_TAG: end.isoformat()}
    timings = Timings()

    def run(stage: str, job: str, **options) -> None:
        began = time.monotonic()
        result = defs.resolve_job_def(job).execute_in_process(
            instance=instance, run_config=QUIET, **options)
        timings.add(stage, result, time.monotonic() - began)

    done = set() if redo else instance.get_materialized_partitions(dg.AssetKey("patch_evaluations"))
    attempted = instance.get_materialized_partitions(dg.AssetKey("agent_attempts"))
    progress(f"history {start} .. {end}: {days} days, subjects {', '.join(subjects)}")
    run("catalog", "catalog_job")
    run("sample_and_controls", "daily_job", tags=window)
    kept = 0
    for offset in range(days):
        day = (start + dt.timedelta(days=offset)).isoformat()
        for name in subjects:
            key = date_key(day, name)
            if regrade_only:
                if str(key) in attempted:
                    run("grading", "regrade_job", partition_key=key)
            elif str(key) in done:
                kept += 1
            else:
                run("attempts_and_grading", "evaluation_job", partition_key=key)
        if offset % 10 == 9 or offset == days - 1:
            progress(f"  {offset + 1}/{days} days ({timings.runs} runs, {kept} graded partitions kept)")
    run("candles", "candles_job", tags=window)
    run("changepoints_and_report", "report_job")
    return timings


def build_demo(today: dt.date | None = None, progress: Callable[[str], None] = print) -> Timings:
    """Pin the demo config in the home, then build its history ending `today`."""
    today = today or dt.date.today()
    prepare_dagster_home()
    pin_demo_config(today)
    with dg.DagsterInstance.get() as instance:
        return build_history(today, instance=instance, progress=progress)
