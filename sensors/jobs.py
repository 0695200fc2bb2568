"""Jobs that schedules, sensors and the command line launch."""

import os

import dagster as dg

from assets.aggregates import candles, changepoints, tracker_report
from assets.catalog import daily_sample, task_catalog
from assets.decisions import alarm_decisions
from assets.grading import agent_attempts, harness_controls, patch_evaluations

catalog_job = dg.define_asset_job("catalog_job", selection=[task_catalog])
daily_job = dg.define_asset_job(
    "daily_job",
    selection=[daily_sample, harness_controls],
    description="The day's sample and harness controls (batched over a date range in one run).",
)
evaluation_job = dg.define_asset_job(
    "evaluation_job",
    selection=[agent_attempts, patch_evaluations],
    description="One subject's attempts for one day, and their grading.",
)
regrade_job = dg.define_asset_job(
    "regrade_job",
    selection=[patch_evaluations],
    description="Re-grade stored attempts without asking the agent again.",
)
candles_job = dg.define_asset_job(
    "candles_job", selection=[candles], description="Candles for a date range, in one run."
)
report_job = dg.define_asset_job(
    "report_job",
    selection=[changepoints, tracker_report],
    description="Changepoints over the whole history, then the report.",
)

decision_job = dg.define_asset_job(
    "decision_job",
    selection=[alarm_decisions],
    description="The confirmation's decision on one subject's alarm day (and its alert).",
)

JOBS = [catalog_job, daily_job, evaluation_job, regrade_job, candles_job, report_job, decision_job]


def tick_interval(default_s: int) -> int:
    """Seconds between sensor ticks; CANDLEBENCH_SENSOR_INTERVAL_S overrides (tests tick fast)."""
    return int(os.environ.get("CANDLEBENCH_SENSOR_INTERVAL_S", default_s))
