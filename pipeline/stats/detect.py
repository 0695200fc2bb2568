"""Detection over a whole warehouse: every subject scored in one vectorized pass per question
(harness suspects, then the monitor on the days they leave), then segmented and judged.

`run_detection` returns the results as objects; `tables.py` and `detect_counts` shape them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import polars as pl

from pipeline.stats.changepoints import Changepoint, segment_history
from pipeline.stats.counts import Panels, panels
from pipeline.stats.design import DEFAULT_DESIGN, MonitorDesign
from pipeline.stats.harness import harness_suspects
from pipeline.stats.monitor import Monitor, monitor
from pipeline.stats.scores import daily_z
from pipeline.stats.significance import benjamini_hochberg
from pipeline.stats.windows import Verdict, classify, latest_verdict

Releases = Mapping[str, Sequence[tuple[str, str, str]]]  # subject -> [(first seen, old, new)]


@dataclass(frozen=True)
class SubjectDetection:
    """One subject: the days analysed, its changepoints, its monitor path and its verdict."""

    subject: str
    dates: list[str]  # harness-suspect days left out
    tasks: list[str]
    excluded_days: list[str]
    changepoints: list[Changepoint]
    run: Monitor  # arrays over `dates`
    verdict: Verdict  # relabelled after Benjamini-Hochberg across subjects
    q_value: float


@dataclass(frozen=True)
class SuspectDay:
    date: str
    subjects_down: list[str]
    subjects_up: list[str]
    control_failure_share: float | None


@dataclass(frozen=True)
class Detection:
    design: MonitorDesign
    subjects: dict[str, SubjectDetection]
    suspects: list[SuspectDay]


def control_failures(controls: pl.DataFrame, dates: list[str]) -> np.ndarray:
    """Share of tasks whose gold/empty controls failed, per day (0 where no controls ran)."""
    frame = controls.select(pl.col("date").cast(pl.String).str.slice(0, 10), pl.col("ok").cast(pl.Boolean))
    share = dict(frame.group_by("date").agg((~pl.col("ok")).mean()).iter_rows())
    return np.array([share.get(day, 0.0) for day in dates], dtype=float)


def _z_table(found: Panels, design: MonitorDesign, all_dates: list[str]) -> np.ndarray:
    """Day x subject z-scores without restarts (the harness question), all subjects at once."""
    at = {d: i for i, d in enumerate(all_dates)}
    column = {name: j for j, name in enumerate(found.subjects)}
    table = np.full((len(all_dates), len(found.subjects)), np.nan)
    for names, s, m in found.groups:
        z = daily_z(s, m, design).z
        for i, name in enumerate(names):
            dates = found.dates[name]
            table[[at[d] for d in dates], column[name]] = z[i, :len(dates)]
    return table


def _without(found: Panels, flagged: set[str]) -> tuple[dict[str, list[str]], list]:
    """The panels with flagged days removed (groups re-stacked only where a day went)."""
    dates, groups = {}, []
    for names, s, m in found.groups:
        keeps = {n: np.array([d not in flagged for d in found.dates[n]], dtype=bool) for n in names}
        for n in names:
            dates[n] = [d for d, k in zip(found.dates[n], keeps[n], strict=True) if k]
        if all(k.all() for k in keeps.values()):
            groups.append((names, s, m))
            continue
        longest = max(int(k.sum()) for k in keeps.values())
        s2, m2 = np.zeros((len(names), longest, s.shape[2])), np.zeros((len(names), longest, s.shape[2]))
        for i, n in enumerate(names):
            kept = np.flatnonzero(keeps[n])
            s2[i, :len(kept)], m2[i, :len(kept)] = s[i, kept], m[i, kept]
        groups.append((names, s2, m2))
    return dates, groups


def _slice(run: Monitor, i: int, days: int) -> Monitor:
    """Stream i's first `days` days of a stacked monitor run."""
    def cut(item):
        return type(item)(**{k: v[i, :days] for k, v in vars(item).items()})

    return Monitor(cut(run.scores), cut(run.path), run.design, run.warning[i, :days],
                   run.extra_trials[i, :days])


def run_detection(
    counts: pl.DataFrame, controls: pl.DataFrame | None = None, design: MonitorDesign = DEFAULT_DESIGN,
    recent: int = 7, baseline: int = 28, releases: Releases | None = None,
    decisions: Mapping[str, Mapping[str, int]] | None = None,
) -> Detection:
    """Harness-suspect days, then per subject (on the other days) the monitor, changepoints and a
    verdict, significant after Benjamini-Hochberg across subjects.

    `counts` has one row per subject, date and task with `successes` and `trials`; `controls`
    one row per gold/empty control (date, task, ok). `decisions` (subject -> date -> -1 cleared
    / +1 confirmed) tells the monitor which alarms a confirmation cleared.
    """
    found = panels(counts)
    all_dates = sorted({d for dates in found.dates.values() for d in dates})
    z_table = _z_table(found, design, all_dates)
    failures = control_failures(controls, all_dates) if controls is not None else None
    flags = harness_suspects(z_table, control_failures=failures)
    suspects = [
        SuspectDay(day, [n for n, z in zip(found.subjects, z_table[i], strict=True) if z < -2],
                   [n for n, z in zip(found.subjects, z_table[i], strict=True) if z > 2],
                   None if failures is None else float(failures[i]))
        for i, day in enumerate(all_dates) if flags[i]
    ]
    flagged = {s.date for s in suspects}
    dates, groups = _without(found, flagged)
    subjects: dict[str, SubjectDetection] = {}
    for names, s, m in groups:
        known = None
        if decisions:
            known = np.zeros(s.shape[:2], dtype=int)
            for i, n in enumerate(names):
                at = {d: t for t, d in enumerate(dates[n])}
                for day, value in decisions.get(n, {}).items():
                    if day in at:
                        known[i, at[day]] = value
        stacked = monitor(s, m, design, known)
        for i, name in enumerate(names):
            mine = dates[name]
            if not mine:
                continue
            ss, mm = s[i, :len(mine)], m[i, :len(mine)]
            changes = segment_history(name, mine, found.tasks[name], ss, mm, (releases or {}).get(name, [])) \
                if len(mine) >= 6 else []
            since = max((mine.index(cp.date) for cp in changes), default=0)
            subjects[name] = SubjectDetection(
                name, mine, found.tasks[name], sorted(set(found.dates[name]) & flagged), changes,
                _slice(stacked, i, len(mine)), latest_verdict(ss, mm, recent, baseline, since=since),
                float("nan"))
    subjects = {name: subjects[name] for name in sorted(subjects)}
    names = list(subjects)
    q_values = benjamini_hochberg(np.array([subjects[n].verdict.p_value for n in names]))
    for name, q in zip(names, q_values, strict=True):
        v = subjects[name].verdict
        if np.isfinite(q):
            v = replace(v, verdict=classify(v.difference, v.se, v.df, float(q), v.margin)[0])
        subjects[name] = replace(subjects[name], verdict=v, q_value=float(q))
    return Detection(design, subjects, suspects)
