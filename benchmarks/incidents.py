"""Replay of known incidents through the product's daily loop: what was found, when, blamed on what.

    python benchmarks/incidents.py [--seed N] [--out FILE.json]

Six simulated subjects, two CLIs x two models plus a third CLI and model (50 tasks x 3 trials a
day, per-task rates with ICC 0.5, day effects of 1 point), through 200 days:
  seed story   codex's release 0.18 lifts codex/gpt by 11 points (day 40); a month flat; then a
               silent 13-point drop of the gpt model, served to codex and mini-swe-agent (day 75)
  effort       claude-code's release 2.2 lowers the default effort: its two subjects lose 6
               points for five weeks (days 100-134), until release 2.3 restores it
  cache bug    a serving cache bug of the opus model: both CLIs' opus subjects lose 5 points for
               two weeks (days 115-128), inside the effort change
  prompt       our harness's prompt template changed for four days (days 160-163): every
               subject loses 8 points
Each day runs as the pipeline runs it (pipeline.stats.detect.run_detection over the history so
far, the decisions fed back): the monitor's warning (and a subject's first 30 days, onboarding)
buys the next day extra trials, an alarm buys RULE.trials (12) fresh trials per task decided by
pipeline.stats.daily.fresh_decision (the calibrated rule), a held alarm is decided by the next
day's own z. Attribution is the pipeline's own rule
(pipeline.stats.attribution, as alarm_decisions and the changepoints asset apply it), over the
six subjects' lanes (anthropic's opus and sonnet, openai's gpt; every CLI on its latest lane):
at alert time, from what the detector knew the day the alert was confirmed; with hindsight, from
the whole history; and on the incident's offline changepoint, as the changepoints table says.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl
from record import result_path, write_result  # benchmarks/record.py
from scipy.special import expit, logit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.stats.attribution import LABELS, LATEST, Attribution, Lane, Move, attribute  # noqa: E402, F401
from pipeline.stats.confirmation import RULE, decide_next  # noqa: E402
from pipeline.stats.counts import panels  # noqa: E402
from pipeline.stats.daily import CODES, NAMES, fresh_decision  # noqa: E402
from pipeline.stats.design import DEFAULT_DESIGN  # noqa: E402
from pipeline.stats.detect import Detection, run_detection  # noqa: E402
from pipeline.stats.evidence import attributed_changepoints, evidence_of  # noqa: E402
from pipeline.stats.releases import RELEASE_SCHEMA  # noqa: E402
from pipeline.stats.tables import as_tables  # noqa: E402

TASKS, TRIALS, DAYS = 50, 3, 200
SUBJECTS = {  # name: (cli, model)
    "claude-code/opus": ("claude-code", "opus"),
    "claude-code/sonnet": ("claude-code", "sonnet"),
    "mini-swe-agent/opus": ("mini-swe-agent", "opus"),
    "mini-swe-agent/sonnet": ("mini-swe-agent", "sonnet"),
    "codex/gpt": ("codex", "gpt"),
    "mini-swe-agent/gpt": ("mini-swe-agent", "gpt"),
}
RELEASES = {"codex": [(40, "0.17", "0.18")], "claude-code": [(100, "2.1", "2.2"), (135, "2.2", "2.3")]}
VENDORS = {"opus": "anthropic", "sonnet": "anthropic", "gpt": "openai"}
LANES = {name: Lane(VENDORS[model], model, cli, LATEST) for name, (cli, model) in SUBJECTS.items()}
GROUPS = {name: "/".join(lane.pair) for name, lane in LANES.items()}  # as pipeline.stats.warehouse passes


def versions(name: str, t: int, dates: list[str]) -> list[tuple[str, str, str]]:
    """The subject's version changes up to day t, as its attempts would record them."""
    cli, model = SUBJECTS[name]
    return [
        (dates[d], f"{cli} {o} / {model}", f"{cli} {w} / {model}")
        for d, o, w in RELEASES.get(cli, [])
        if d <= t
    ]


def evidence(found: Detection, decided: list[dict], t: int, dates: list[str]):
    """What the pipeline's attribution reads on day t: the detector's tables, the decisions so far
    and the releases (CLI releases: the model never changes its name here)."""
    tables = as_tables(found)
    tables["releases"] = pl.DataFrame(
        [
            {
                "subject": n,
                "old_version": o,
                "new_version": w,
                "first_seen": d,
                "kind": "cli",
                "old": o.split(" / ")[0],
                "new": w.split(" / ")[0],
            }
            for n in SUBJECTS
            for d, o, w in versions(n, t, dates)
        ],
        schema=RELEASE_SCHEMA,
    )
    rows = pl.DataFrame(
        decided,
        schema={
            "subject": pl.String,
            "date": pl.String,
            "direction": pl.String,
            "decision": pl.String,
            "alarm_date": pl.String,
            "decided_at": pl.Int64,
        },
    )
    return tables, evidence_of(tables, LANES, rows)


@dataclass(frozen=True)
class Incident:
    name: str
    lane: str  # what really happened: "cli <name>", "model <name>", "harness"
    start: int
    days: int  # how long it lasts (DAYS - start: for good)
    points: float  # change of the mean pass rate, in points (0: the end of an earlier incident)
    subjects: tuple[str, ...]
    direction: int = -1  # the alerts that find it: -1 drops, +1 rises


def _of(key: int, value: str) -> tuple[str, ...]:
    return tuple(s for s, lanes in SUBJECTS.items() if lanes[key] == value)


INCIDENTS = (
    Incident("codex release 0.18 (+11)", "cli codex", 40, DAYS - 40, 11, ("codex/gpt",), +1),
    Incident("silent gpt drop (-13)", "model gpt", 75, DAYS - 75, -13, _of(1, "gpt")),
    Incident("default-effort change (5 weeks)", "cli claude-code", 100, 35, -6, _of(0, "claude-code")),
    Incident("cache bug (2 weeks)", "model opus", 115, 14, -5, _of(1, "opus")),
    Incident("effort restored by 2.3", "cli claude-code", 135, DAYS - 135, 0, _of(0, "claude-code"), +1),
    Incident("cache bug fixed", "model opus", 129, DAYS - 129, 0, _of(1, "opus"), +1),
    Incident("prompt change (4 days)", "harness", 160, 4, -8, tuple(SUBJECTS)),
)


def levels() -> np.ndarray:
    """Points each subject's mean pass rate is moved on each day (subjects x days)."""
    shift = np.zeros((len(SUBJECTS), DAYS))
    for incident in INCIDENTS:
        for name in incident.subjects:
            days = slice(incident.start, incident.start + incident.days)
            shift[list(SUBJECTS).index(name), days] += incident.points
    return shift


def offset(rate: np.ndarray, points: float) -> float:
    """The logit offset that moves the mean of per-task rates by `points` (bisection)."""
    target, lo, hi = rate.mean() + points / 100, -12.0, 12.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if expit(logit(rate) + mid).mean() < target else (lo, mid)
    return (lo + hi) / 2


class World:
    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        mean = self.rng.uniform(0.35, 0.55, (len(SUBJECTS), 1))
        spread = 1 / 0.5 - 1
        rate = self.rng.beta(mean * spread, (1 - mean) * spread, (len(SUBJECTS), TASKS))
        rate = np.clip(rate, 1e-3, 1 - 1e-3)
        points = levels()
        offsets = np.zeros_like(points)
        for i in range(len(SUBJECTS)):
            found, index = np.unique(points[i], return_inverse=True)
            offsets[i] = np.array([offset(rate[i], x) for x in found])[index]
        day = self.rng.normal(0, 0.01, points.shape) / (rate * (1 - rate)).mean(axis=1, keepdims=True)
        self.p = expit(logit(rate)[:, None, :] + (offsets + day)[:, :, None])  # subjects x days x tasks

    def draw(self, i: int, t: int, trials: int) -> tuple[np.ndarray, np.ndarray]:
        m = np.full(TASKS, trials)
        return self.rng.binomial(m, self.p[i, t]), m


def _frame(name: str, day: str, s: np.ndarray, m: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "subject": name,
            "date": day,
            "task": [f"t{j:02d}" for j in range(TASKS)],
            "successes": s.astype(np.int64),
            "trials": m.astype(np.int64),
        }
    )


def _row(name: str, day: str, way: int, decision: str, alarm_day: str, t: int) -> dict:
    direction = "up" if way > 0 else "down"
    return {
        "subject": name,
        "date": day,
        "direction": direction,
        "decision": decision,
        "alarm_date": alarm_day,
        "decided_at": t,
    }


def _alarm_day(decided: list[dict], name: str, day: str) -> str:
    """The alarm day of `name`'s decision of `day` (a held alarm is decided the day after)."""
    return next(r["alarm_date"] for r in decided if r["subject"] == name and r["date"] == day)


def replay(seed: int) -> dict:
    world, names = World(seed), list(SUBJECTS)
    dates = [str(np.datetime64("2026-01-01") + t) for t in range(DAYS)]
    parts: list[pl.DataFrame] = []
    decisions: dict[str, dict[str, int]] = {n: {} for n in names}
    extra, held = dict.fromkeys(names, 0), dict.fromkeys(names, 0)  # held: direction of a held alarm
    held_on = dict.fromkeys(names, "")  # the held alarm's day
    log = {n: [] for n in names}  # (day index, event, direction)
    decided: list[dict] = []  # the decisions table, as alarm_decisions writes it
    said: dict[tuple[str, int], Attribution] = {}  # what each confirmed alert named, that day
    pending: list[
        tuple[str, int, str, int]
    ] = []  # confirmed today: (subject, day index, alarm day, direction)
    suspects: set[str] = set()
    trials_run = 0
    for t, day in enumerate(dates):
        onboarding = DEFAULT_DESIGN.onboarding_trials if t < DEFAULT_DESIGN.onboarding_days else 0
        for i, name in enumerate(names):
            s, m = world.draw(i, t, TRIALS + onboarding + extra[name])
            trials_run += int(m.sum())
            parts.append(_frame(name, day, s, m))
        counts = pl.concat(parts)
        releases = {n: versions(n, t, dates) for n in names}
        found = run_detection(
            counts, None, DEFAULT_DESIGN, releases=releases, decisions=decisions, groups=GROUPS
        )
        flagged = {d.date for d in found.suspects}
        suspects |= flagged
        usable = counts.filter(~pl.col("date").is_in(list(flagged)))
        for i, name in enumerate(names):
            mine = found.subjects[name]
            run = mine.run
            last = len(mine.dates) - 1
            alarm = int(run.path.alarm[last]) if mine.dates[-1] == day else 0
            extra[name] = int(run.extra_trials[last])
            if held[name]:  # yesterday's held alarm: today's own z decides (no fresh trials)
                z = run.scores.z_cusum[last] if mine.dates[-1] == day else np.nan
                verdict = int(decide_next(held[name], z, RULE))
                decisions[name][day] = verdict
                log[name].append((t, NAMES[verdict], held[name]))
                decided.append(_row(name, day, held[name], NAMES[verdict], held_on[name], t))
                if verdict == 1:
                    pending.append((name, t, held_on[name], held[name]))
                held[name] = 0
                continue
            if not alarm:
                continue
            log[name].append((t, "alarm", alarm))
            fs, fm = world.draw(i, t, RULE.trials)
            trials_run += int(fm.sum())
            panel = panels(usable.filter(pl.col("subject") == name))
            s, m = panel.matrices(name)
            direction = "up" if alarm > 0 else "down"
            verdict = fresh_decision(s, m, panel.dates[name], day, fs, fm, direction, True, decisions[name])
            decisions[name][day] = CODES[verdict.decision]
            decided.append(_row(name, day, alarm, verdict.decision, day, t))
            parts.append(_frame(name, day, fs, fm))  # the fresh trials join the day's partition
            if verdict.decision == "held":
                held[name], held_on[name], extra[name] = alarm, day, DEFAULT_DESIGN.warning_trials
            else:
                log[name].append((t, verdict.decision, alarm))
                if verdict.decision == "confirmed":
                    pending.append((name, t, day, alarm))
        if pending:  # what alarm_decisions attributes each confirmed shift to, with today's tables
            _, known = evidence(found, decided, t, dates)
            for name, when, alarm_day, way in pending:
                said[(name, when)] = attribute(Move(name, alarm_day, way, "confirmed"), known)
            pending.clear()
    tables, known = evidence(found, decided, DAYS, dates)
    return {
        "said": said,
        "hindsight": {
            (n, t): attribute(Move(n, _alarm_day(decided, n, dates[t]), way, "confirmed"), known)
            for n, events in log.items()
            for t, event, way in events
            if event == "confirmed"
        },
        "changepoints": attributed_changepoints(tables["changepoints"], known),
        "dates": dates,
        "log": log,
        "suspects": sorted(suspects),
        "final": found,
        "trials_per_day": trials_run / (DAYS * len(names) * TASKS),
    }


def _confirmed(log: dict, sign: int, days: range) -> dict[str, int]:
    """Each subject's first confirmed alert in direction `sign` within `days`."""
    return {
        n: min(t for t, event, way in events if event == "confirmed" and way == sign and t in days)
        for n, events in log.items()
        if any(event == "confirmed" and way == sign and t in days for t, event, way in events)
    }


def _changepoint(changepoints: pl.DataFrame, incident: Incident, dates: list[str]) -> dict | None:
    """The incident's first offline changepoint on a subject it touched, within 3 days, its way."""
    rows = [
        r
        for r in changepoints.sort("date").iter_rows(named=True)
        if r["subject"] in incident.subjects
        and abs(dates.index(r["date"]) - incident.start) <= 3
        and np.sign(r["difference"]) == incident.direction
    ]
    return rows[0] if rows else None


def _text(found: Attribution | None) -> str:
    return f"{found.label}: {found.reason}" if found else "-"


def attribute_incidents(result: dict) -> list[dict]:
    """Per incident: the first confirmed alert in its direction on a subject it touched, its delay,
    and the pipeline's attribution of it: the day it was alerted and with hindsight; and the
    attribution of its offline changepoint."""
    dates, log = result["dates"], result["log"]
    rows = []
    for incident in INCIDENTS:
        window = range(incident.start, min(DAYS, incident.start + max(7, min(incident.days, 21))))
        mine = {
            n: t for n, t in _confirmed(log, incident.direction, window).items() if n in incident.subjects
        }
        first = min(mine.values(), default=None)
        who = next((n for n in sorted(mine) if mine[n] == first), None)
        change = _changepoint(result["changepoints"], incident, dates)
        rows.append(
            {
                "incident": incident.name,
                "truth": incident.lane,
                "start": dates[incident.start],
                "offline_changepoint": change["date"] if change else None,
                "confirmed": dates[first] if first is not None else None,
                "delay_days": first - incident.start + 1 if first is not None else None,
                "found_on": sorted(mine),
                "attributed": _text(result["said"].get((who, first))),
                "attributed_later": _text(result["hindsight"].get((who, first))),
                "changepoint_attributed": (
                    f"{change['attribution']}: {change['attribution_reason']}" if change else "-"
                ),
            }
        )
    return rows


def stray(result: dict) -> list[dict]:
    """Confirmed alerts outside every incident's window: false alerts."""
    explained = set()
    for incident in INCIDENTS:
        span = range(incident.start, min(DAYS, incident.start + max(7, min(incident.days, 21)) + 7))
        explained |= {(n, t) for n in incident.subjects for t in span}
    return [
        {"subject": n, "date": result["dates"][t], "direction": "up" if way > 0 else "down"}
        for n, events in result["log"].items()
        for t, event, way in events
        if event == "confirmed" and (n, t) not in explained
    ]


def table(rows: list[dict], strays: list[dict], suspects: list[str]) -> str:
    header = (
        f"{'incident':<32} {'truth':<16} {'start':<11} {'confirmed':<11} {'delay':>5} "
        f"{'offline':<11}  attributed to (at alert / with hindsight / offline changepoint)"
    )
    lines = [header, "-" * (len(header) + 10)]
    for r in rows:
        delay = "-" if r["delay_days"] is None else f"{r['delay_days']}d"
        lines.append(
            f"{r['incident']:<32} {r['truth']:<16} {r['start']:<11} {r['confirmed'] or '-':<11} "
            f"{delay:>5} {r['offline_changepoint'] or '-':<11}  {r['attributed']}"
        )
        for key in ("attributed_later", "changepoint_attributed"):
            lines.append(f"{'':<90}{r[key]}")
    lines.append(f"harness-suspect days: {', '.join(suspects) or 'none'}")
    lines.append(
        "confirmed alerts outside every incident: "
        + (", ".join(f"{s['subject']} {s['direction']} {s['date']}" for s in strays) or "none")
    )
    return "\n".join(lines)


def _one(seed: int) -> dict:
    result = replay(seed)
    result["rows"], result["strays"] = attribute_incidents(result), stray(result)
    for key in ("final", "said", "hindsight", "changepoints"):
        del result[key]
    return result


def named(lane: str, attributed: str) -> bool:
    """Whether an attribution ("label: reason") names the true lane."""
    kind, _, name = lane.partition(" ")
    label, _, reason = attributed.partition(": ")
    if kind == "harness":
        return label == "evaluation harness"
    if kind == "cli":
        return label == "agent harness" and (
            reason.startswith(f"only the {name} ") or reason.startswith(f"CLI release {name} ")
        )
    return label == "model" and reason.startswith(f"both lanes of {name} ")


def summary(results: list[dict]) -> tuple[str, list[dict]]:
    """Per incident over the seeds: how often a confirmed alert found it, the median delay, and
    how often the attribution named the true lane: in the alert, with hindsight, and on the
    offline changepoint."""
    rows = []
    for k, incident in enumerate(INCIDENTS):
        found = [r["rows"][k] for r in results if r["rows"][k]["delay_days"] is not None]
        offline = [r["rows"][k] for r in results if r["rows"][k]["offline_changepoint"] is not None]
        rows.append(
            {
                "incident": incident.name,
                "found": len(found),
                "seeds": len(results),
                "median_delay": float(np.median([f["delay_days"] for f in found])) if found else None,
                "offline": len(offline),
                "lane_named": sum(named(incident.lane, f["attributed"]) for f in found),
                "lane_named_later": sum(named(incident.lane, f["attributed_later"]) for f in found),
                "changepoint_lane_named": sum(
                    named(incident.lane, f["changepoint_attributed"]) for f in offline
                ),
            }
        )
    lines = [
        f"over {len(results)} seeds: {'incident':<32} {'found':>6} {'median':>7} {'named at alert':>14} "
        f"{'hindsight':>9} {'offline':>8} {'named':>6}"
    ]
    for r in rows:
        median = "-" if r["median_delay"] is None else f"{r['median_delay']:.0f}d"
        lines.append(
            f"{'':<15}{r['incident']:<32} {r['found']:>3}/{r['seeds']:<2} {median:>7} "
            f"{r['lane_named']:>11}/{r['found']:<2} {r['lane_named_later']:>6}/{r['found']:<2} "
            f"{r['offline']:>5}/{r['seeds']:<2} {r['changepoint_lane_named']:>3}/{r['offline']:<2}"
        )
    strays = sum(len(r["strays"]) for r in results)
    lines.append(
        f"{'':<15}confirmed alerts outside every incident: {strays} in {len(results)} x "
        f"{len(SUBJECTS)} subject-histories of {DAYS} days"
    )
    return "\n".join(lines), rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=20261202)
    parser.add_argument("--seeds", type=int, default=1, help="replay this many seeds (seed, seed+1, ...)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--quick", action="store_true", help="the first 60 days only (the codex release), one seed"
    )
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if args.quick:  # every function reads DAYS when it runs; incidents after day 60 do not happen
        global DAYS, INCIDENTS
        DAYS, args.seeds = 60, 1
        INCIDENTS = tuple(i for i in INCIDENTS if i.start < DAYS)
    seeds = [args.seed + i for i in range(args.seeds)]
    if len(seeds) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(args.workers) as pool:
            results = list(pool.map(_one, seeds))
    else:
        results = [_one(seeds[0])]
    result, rows, strays = results[0], results[0]["rows"], results[0]["strays"]
    print(f"seed {seeds[0]}:")
    print(table(rows, strays, result["suspects"]))
    print(f"trials per task per subject-day: {result['trials_per_day']:.2f} (3 ordinary)")
    text, overall = summary(results)
    if len(results) > 1:
        print(text)
    out = write_result(
        result_path("incidents", args.quick, args.out),
        {
            "seeds": seeds,
            "summary": overall,
            "per_seed": [
                {"seed": s, "found": r["rows"], "strays": r["strays"], "suspects": r["suspects"]}
                for s, r in zip(seeds, results, strict=True)
            ],
            "seed": args.seed,
            "incidents": [asdict(i) for i in INCIDENTS],
            "found": rows,
            "stray_alerts": strays,
            "harness_suspect_days": result["suspects"],
            "trials_per_day": result["trials_per_day"],
            "events": {
                n: [{"date": result["dates"][t], "event": e, "direction": w} for t, e, w in events]
                for n, events in result["log"].items()
            },
        },
    )
    print(f"JSON: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
