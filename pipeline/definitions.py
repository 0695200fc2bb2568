"""The single assembly point of the code location: `dagster dev -w workspace.yaml` loads this."""

import dagster as dg

from assets.aggregates import candles, changepoints, no_confirmed_regression, tracker_report
from assets.catalog import daily_sample, task_catalog
from assets.decisions import alarm_decisions
from assets.grading import agent_attempts, harness_controls, patch_evaluations
from pipeline.orchestration.resources import TrackerResource
from sensors.aggregation import aggregation_sensor
from sensors.confirmation import confirmation_sensor
from sensors.harness import harness_retry_sensor
from sensors.jobs import JOBS
from sensors.schedules import daily_controls, daily_evaluations
from sensors.subjects import subjects_sensor
from sensors.versions import version_sensor

defs = dg.Definitions(
    assets=[
        task_catalog,
        daily_sample,
        agent_attempts,
        patch_evaluations,
        harness_controls,
        candles,
        changepoints,
        tracker_report,
        alarm_decisions,
    ],
    asset_checks=[no_confirmed_regression],
    jobs=JOBS,
    schedules=[daily_controls, daily_evaluations],
    sensors=[aggregation_sensor, version_sensor, subjects_sensor, harness_retry_sensor, confirmation_sensor],
    resources={"tracker": TrackerResource()},
    # A run's steps follow one another (attempts, then grading): one process per run, not per step.
    executor=dg.in_process_executor,
)
