"""Detection over a whole warehouse: every subject scored in one vectorized pass per question
(harness suspects, then the monitor on the days they leave), then segmented and judged.

`run_detection` returns the results as objects; `tables.py` and `detect_counts` shape them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import polars as pl

from pipeline.stats.changepoints import Changepoint, boundaries_many, segment_history
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


Group = tuple[list[str], np.ndarray, np.ndarray]  # subjects, successes and trials (streams x days x tasks)


def _decisions(
    names: list[str],
    dates: dict[str, list[str]],
    days: int,
    decisions: Mapping[str, Mapping[str, int]] | None,
) -> np.ndarray | None:
    """Known confirmation decisions as a streams x days array (None when there are none)."""
    if not decisions:
        return None
    known = np.zeros((len(names), days), dtype=int)
    for i, name in enumerate(names):
        at = {d: t for t, d in enumerate(dates[name])}
        for day, value in decisions.get(name, {}).items():
            if day in at:
                known[i, at[day]] = value
    return known


def _restarted_early(run: Monitor, lengths: np.ndarray) -> np.ndarray:
    """Streams whose baseline restarted before their last day (their later z's differ from daily_z)."""
    crossed = (run.path.alarm != 0) & ~run.path.one_day & ~run.cleared
    days = np.arange(crossed.shape[1])[None, :]
    return (crossed & (days < lengths[:, None] - 1)).any(axis=1)


def _z_table(found: Panels, runs: list[Monitor], design: MonitorDesign, all_dates: list[str]) -> np.ndarray:
    """Day x subject z-scores without restarts, for the harness question.

    Up to a stream's first baseline restart the monitor's z's are daily_z's; only streams that
    restarted are scored again without restarts.
    """
    at = {d: i for i, d in enumerate(all_dates)}
    column = {name: j for j, name in enumerate(found.subjects)}
    table = np.full((len(all_dates), len(found.subjects)), np.nan)
    for (names, s, m), run in zip(found.groups, runs, strict=True):
        lengths = np.array([len(found.dates[n]) for n in names])
        z = run.scores.z.copy()
        again = np.flatnonzero(_restarted_early(run, lengths))
        if 2 * len(again) > len(names):  # most restarted: score them all rather than copy most
            z = daily_z(s, m, design).z
        elif len(again):
            z[again] = daily_z(s[again], m[again], design).z
        for i, name in enumerate(names):
            dates = found.dates[name]
            table[[at[d] for d in dates], column[name]] = z[i, : len(dates)]
    return table


def _without(found: Panels, flagged: set[str]) -> tuple[dict[str, list[str]], list[Group], list[bool]]:
    """The panels with flagged days removed (groups re-stacked only where a day went)."""
    dates, groups, changed = {}, [], []
    for names, s, m in found.groups:
        keeps = {n: np.array([d not in flagged for d in found.dates[n]], dtype=bool) for n in names}
        for n in names:
            dates[n] = [d for d, k in zip(found.dates[n], keeps[n], strict=True) if k]
        if all(k.all() for k in keeps.values()):
            groups.append((names, s, m))
            changed.append(False)
            continue
        longest = max(int(k.sum()) for k in keeps.values())
        s2 = np.zeros((len(names), longest, s.shape[2]), s.dtype)
        m2 = np.zeros((len(names), longest, s.shape[2]), m.dtype)
        for i, n in enumerate(names):
            kept = np.flatnonzero(keeps[n])
            s2[i, : len(kept)], m2[i, : len(kept)] = s[i, kept], m[i, kept]
        groups.append((names, s2, m2))
        changed.append(True)
    return dates, groups, changed


def _slice(run: Monitor, i: int, days: int) -> Monitor:
    """Stream i's first `days` days of a stacked monitor run."""

    def cut(item):
        return type(item)(**{k: v[i, :days] for k, v in vars(item).items()})

    return Monitor(
        cut(run.scores),
        cut(run.path),
        run.design,
        run.warning[i, :days],
        run.extra_trials[i, :days],
        run.cleared[i, :days],
    )


def run_detection(
    counts: pl.DataFrame,
    controls: pl.DataFrame | None = None,
    design: MonitorDesign = DEFAULT_DESIGN,
    recent: int = 7,
    baseline: int = 28,
    releases: Releases | None = None,
    decisions: Mapping[str, Mapping[str, int]] | None = None,
    labels: dict[str, list[str]] | None = None,
    groups: Mapping[str, str] | None = None,
) -> Detection:
    """Harness-suspect days, then per subject (on the other days) the monitor, changepoints and a
    verdict, significant after Benjamini-Hochberg across subjects.

    `counts` has one row per subject, date and task with `successes` and `trials`; `controls`
    one row per gold/empty control (date, task, ok). `decisions` (subject -> date -> +1
    confirmed, -1 cleared, 2 held) tells the monitor what the confirmations decided; `labels`
    names integer-coded subject and task columns; `groups` (subject -> its model's label) counts
    the lanes of one model once when asking whether most subjects moved at once.
    """
    if not counts.height:
        return Detection(design, {}, [])
    found = panels(counts, labels)
    all_dates = sorted({d for dates in found.dates.values() for d in dates})
    runs = [
        monitor(s, m, design, _decisions(names, found.dates, s.shape[1], decisions))
        for names, s, m in found.groups
    ]
    z_table = _z_table(found, runs, design, all_dates)
    failures = control_failures(controls, all_dates) if controls is not None else None
    units = [(groups or {}).get(n, n) for n in found.subjects]
    flags = harness_suspects(z_table, control_failures=failures, groups=np.array(units))
    suspects = [
        SuspectDay(
            day,
            [n for n, z in zip(found.subjects, z_table[i], strict=True) if z < -2],
            [n for n, z in zip(found.subjects, z_table[i], strict=True) if z > 2],
            None if failures is None else float(failures[i]),
        )
        for i, day in enumerate(all_dates)
        if flags[i]
    ]
    flagged = {s.date for s in suspects}
    dates, groups, changed = _without(found, flagged)
    subjects: dict[str, SubjectDetection] = {}
    for (names, s, m), run, again in zip(groups, runs, changed, strict=True):
        if again:
            run = monitor(s, m, design, _decisions(names, dates, s.shape[1], decisions))
        lengths = np.array([len(dates[n]) for n in names])
        long = np.flatnonzero(lengths >= 6)
        daily_s, daily_m = s.sum(axis=2), m.sum(axis=2)
        bounds = (
            dict(zip(long, boundaries_many(daily_s[long], daily_m[long], lengths[long]), strict=True))
            if len(long)
            else {}
        )
        for i, name in enumerate(names):
            mine = dates[name]
            if not mine:
                continue
            ss, mm = s[i, : len(mine)], m[i, : len(mine)]
            changes = (
                segment_history(
                    name, mine, found.tasks[name], ss, mm, (releases or {}).get(name, []), bounds=bounds[i]
                )
                if i in bounds
                else []
            )
            since = max((mine.index(cp.date) for cp in changes), default=0)
            subjects[name] = SubjectDetection(
                name,
                mine,
                found.tasks[name],
                sorted(set(found.dates[name]) & flagged),
                changes,
                _slice(run, i, len(mine)),
                latest_verdict(ss, mm, recent, baseline, since=since),
                float("nan"),
            )
    subjects = {name: subjects[name] for name in sorted(subjects)}
    names = list(subjects)
    q_values = benjamini_hochberg(np.array([subjects[n].verdict.p_value for n in names]))
    for name, q in zip(names, q_values, strict=True):
        v = subjects[name].verdict
        if np.isfinite(q):
            v = replace(v, verdict=classify(v.difference, v.se, v.df, float(q), v.margin)[0])
        subjects[name] = replace(subjects[name], verdict=v, q_value=float(q))
    return Detection(design, subjects, suspects)
