"""The table-shaped entry point: detection results as the warehouse's tables (changepoints,
alarms, monitor, verdicts, harness_suspects) and as the JSON `candlebench detect` prints."""

from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np
import polars as pl

from pipeline.stats.counts import trial_counts
from pipeline.stats.cusum import cusum_arl, false_alarms_per_year
from pipeline.stats.design import DEFAULT_DESIGN, MonitorDesign
from pipeline.stats.detect import Detection, Releases, SubjectDetection, run_detection

CHANGEPOINT_SCHEMA = {
    "subject": pl.String,
    "date": pl.String,
    "before_rate": pl.Float64,
    "after_rate": pl.Float64,
    "difference": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "p_value": pl.Float64,
    "n_tasks": pl.Int64,
    "flipped_down": pl.List(pl.String),
    "flipped_up": pl.List(pl.String),
    "version_change": pl.String,
    "release_kind": pl.String,  # what the release nearby changed: cli, model, cli+model ("" none)
}
ALARM_SCHEMA = {
    "subject": pl.String,
    "date": pl.String,
    "direction": pl.String,
    "rule": pl.String,
    "z": pl.Float64,
    "difference": pl.Float64,
}
MONITOR_SCHEMA = {
    "subject": pl.String,
    "date": pl.String,
    "z": pl.Float64,
    "statistic": pl.Float64,  # the CUSUM as computed on the day, before an alarm's reset
    "threshold": pl.Float64,
    "statistic_after": pl.Float64,  # what the next day starts from (0 after a CUSUM alarm)
    "z_cusum": pl.Float64,  # the z the CUSUM added: variance widened for day-to-day correlation
    "warning": pl.Boolean,  # statistic_after above the warning line: the next day takes extra trials
    "warning_level": pl.Float64,
    "extra_trials": pl.Int64,  # trials per task the next day should add
}
VERDICT_SCHEMA = {
    "subject": pl.String,
    "verdict": pl.String,
    "difference": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "p_value": pl.Float64,
    "q_value": pl.Float64,
    "mde": pl.Float64,
    "n_tasks": pl.Int64,
    "method": pl.String,
    "window_start": pl.String,
    "window_end": pl.String,
    "baseline_start": pl.String,
    "baseline_end": pl.String,
    "latest_date": pl.String,
}
SUSPECT_SCHEMA = {
    "date": pl.String,
    "subjects_down": pl.List(pl.String),
    "subjects_up": pl.List(pl.String),
    "control_failure_share": pl.Float64,
}


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _frame(rows: list[dict] | dict, schema: dict) -> pl.DataFrame:
    """A frame of `schema` with NaN and infinities as nulls, as JSON would have them."""
    frame = pl.DataFrame(rows, schema=schema)
    return frame.with_columns(pl.when(pl.col(pl.Float64).is_finite()).then(pl.col(pl.Float64)))


def _alarms(found: SubjectDetection) -> list[dict]:
    run, dates = found.run, found.dates
    return [
        {
            "date": dates[t],
            "direction": "up" if run.path.alarm[t] > 0 else "down",
            "rule": "one-day" if run.path.one_day[t] else "cusum",
            "z": run.scores.z[t],
            "difference": run.scores.difference[t],
        }
        for t in np.flatnonzero(run.path.alarm)
    ]


def _windows(found: SubjectDetection) -> dict[str, list[str] | None]:
    v, dates = found.verdict, found.dates
    return {
        key: [dates[a], dates[b - 1]] if b > a else None
        for key, (a, b) in (("window", v.window), ("baseline", v.baseline))
    }


def _monitor_frame(detection: Detection) -> pl.DataFrame:
    design, parts = detection.design, []
    for name, found in detection.subjects.items():
        run = found.run
        parts.append(
            _frame(
                {
                    "subject": [name] * len(found.dates),
                    "date": found.dates,
                    "z": run.scores.z,
                    "statistic": run.path.statistic,
                    "threshold": np.full(len(found.dates), design.h),
                    "statistic_after": np.maximum(run.path.upper, run.path.lower),
                    "z_cusum": run.scores.z_cusum,
                    "warning": run.warning,
                    "warning_level": np.full(len(found.dates), design.warning),
                    "extra_trials": run.extra_trials.astype(np.int64),
                },
                MONITOR_SCHEMA,
            )
        )
    return pl.concat(parts) if parts else pl.DataFrame(schema=MONITOR_SCHEMA)


def as_tables(detection: Detection) -> dict[str, pl.DataFrame]:
    """changepoints, alarms, monitor, verdicts and harness_suspects, ready for DuckDB."""
    changepoints, alarms, verdicts = [], [], []
    for name, found in detection.subjects.items():
        changepoints += [
            {**asdict(cp), "flipped_down": list(cp.flipped_down), "flipped_up": list(cp.flipped_up)}
            for cp in found.changepoints
        ]
        alarms += [{"subject": name, **alarm} for alarm in _alarms(found)]
        v, windows = found.verdict, _windows(found)
        verdicts.append(
            {
                "subject": name,
                "verdict": v.verdict,
                "difference": v.difference,
                "ci_low": v.ci_low,
                "ci_high": v.ci_high,
                "p_value": v.p_value,
                "q_value": found.q_value,
                "mde": v.mde,
                "n_tasks": v.n_tasks,
                "method": v.method,
                "window_start": (windows["window"] or [None, None])[0],
                "window_end": (windows["window"] or [None, None])[1],
                "baseline_start": (windows["baseline"] or [None, None])[0],
                "baseline_end": (windows["baseline"] or [None, None])[1],
                "latest_date": found.dates[-1],
            }
        )
    suspects = [asdict(day) for day in detection.suspects]
    return {
        "changepoints": _frame(changepoints, CHANGEPOINT_SCHEMA),
        "alarms": _frame(alarms, ALARM_SCHEMA),
        "monitor": _monitor_frame(detection),
        "verdicts": _frame(verdicts, VERDICT_SCHEMA),
        "harness_suspects": _frame(suspects, SUSPECT_SCHEMA),
    }


def detection_tables(
    counts: pl.DataFrame,
    controls: pl.DataFrame | None = None,
    releases: Releases | None = None,
    design: MonitorDesign = DEFAULT_DESIGN,
    decisions: dict[str, dict[str, int]] | None = None,
    labels: dict[str, list[str]] | None = None,
    groups: dict[str, str] | None = None,
) -> dict[str, pl.DataFrame]:
    """`as_tables(run_detection(...))`; `labels` names integer-coded subject and task columns,
    `groups` each subject's model (its lanes count once in the harness-suspect rule)."""
    return as_tables(
        run_detection(
            counts, controls, design, releases=releases, decisions=decisions, labels=labels, groups=groups
        )
    )


def design_summary(design: MonitorDesign) -> dict:
    return {
        **asdict(design),
        "arl_per_side_iid": cusum_arl(design.k, design.h, 0.0, design.c),
        "false_alarms_per_year_iid": false_alarms_per_year(design),
    }


def _subject_json(found: SubjectDetection, with_monitor: bool) -> dict:
    run, dates, last = found.run, found.dates, len(found.dates) - 1
    z = run.scores.z
    report = {
        "days": len(dates),
        "tasks": len(found.tasks),
        "first_date": dates[0],
        "last_date": dates[-1],
        "changepoints": [
            {k: v for k, v in asdict(cp).items() if k != "subject"} for cp in found.changepoints
        ],
        "alarms": _alarms(found),
        "latest": {
            "date": dates[last],
            "z": z[last],
            "difference": run.scores.difference[last],
            "cusum_up": run.path.upper[last],
            "cusum_down": run.path.lower[last],
            "statistic": run.path.statistic[last],
            "warning": bool(run.warning[last]),
            "extra_trials_due": int(run.extra_trials[last]),
        },
    }
    if with_monitor:  # the daily path, for charts: statistic against its threshold
        report["monitor"] = [
            {
                "date": d,
                "z": z[t],
                "cusum_up": run.path.upper[t],
                "cusum_down": run.path.lower[t],
                "statistic": run.path.statistic[t],
                "warning": bool(run.warning[t]),
            }
            for t, d in enumerate(dates)
        ]
    report["excluded_days"] = found.excluded_days
    v = found.verdict
    windows = _windows(found)
    verdict = {
        **{k: val for k, val in asdict(v).items() if k not in windows},
        "q_value": found.q_value,
        **windows,
    }
    return {**report, "verdict": verdict, "mde": v.mde}


def detect_counts(
    frame: pl.DataFrame,
    controls: pl.DataFrame | None = None,
    design: MonitorDesign = DEFAULT_DESIGN,
    recent: int = 7,
    baseline: int = 28,
    releases: Releases | None = None,
    with_monitor: bool = False,
    source: str = "trials",
) -> dict:
    """Changepoints, online alarms and a verdict per subject, and harness-suspect days, as JSON.

    `frame` holds one row per graded trial (subject, date, task, trial, resolved), checked by
    `trial_counts` (bad rows raise `CountsError` naming `source`); `controls`, optional, one row
    per gold/empty control (date, task, ok). Days flagged as harness suspects are reported once
    and left out of every subject's analysis; verdicts are significant after Benjamini-Hochberg
    across subjects. `releases` marks changepoints near a release; `with_monitor` adds each
    subject's daily CUSUM path.
    """
    detection = run_detection(trial_counts(frame, source), controls, design, recent, baseline, releases)
    return _clean(
        {
            "design": design_summary(design),
            "subjects": {
                name: _subject_json(found, with_monitor) for name, found in detection.subjects.items()
            },
            "harness_suspect_days": [asdict(day) for day in detection.suspects],
        }
    )


def _clean(value):
    """JSON-able: numpy scalars to Python, NaN and infinities to None."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
