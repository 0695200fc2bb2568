"""Who moved a shift: the model, the agent harness, the evaluation harness, the provider, or the
subject alone. A pure rule over what the detector and the config already know.

Inputs: the shift (a subject, a day, a direction), every subject's lane (vendor, model, CLI, and
whether that CLI is `frozen` at a pinned version or follows `latest`), the moves the detector
saw (confirmed shifts, alarms that were not cleared, offline changepoints with p < 0.05, and the
subjects that moved on a harness-suspect day), the harness-suspect days, and the releases (the
CLI part and the model part of each subject's version string, separately).

**The window.** A move spans from its onset to the day it was seen: an offline changepoint is
one day; an alarm or confirmed shift starts at its subject's own offline changepoint the same
way in the `ONSET_DAYS` before it (the segmentation places onsets, alarms come after them), else
on its own day. Two moves are the same event when they point the same way and their spans come
within `NEAR_DAYS` of each other; a release or a suspect day belongs to a shift when it falls
within `NEAR_DAYS` of the shift's span. A subject can only speak against a shift (a lane that
"did not move") when it has data from the shift's onset to its day.

**The rule**, first match wins (this order is the tie-breaking):
1. `evaluation harness`: the gold/empty controls failed on a harness-suspect day in the window;
   or subjects of at least two vendors moved together, covering at least two thirds of the
   (vendor, model) groups observed: the one thing they share is our harness.
2. `agent harness`: the shift is on a `latest` lane, other lanes of the models that moved on
   that CLI's latest lane were observed (a frozen lane of the same model, or the same model
   under another CLI), and none of them moved. Names the CLI release in the window, if any.
3. `provider`: subjects of the shift's vendor serving at least two different models moved.
4. `model`: another lane of the same vendor and model moved the same way (both lanes moved).
   Names the model change in the window, or says there was none (a silent change).
5. No other lane to compare: the subject's own releases decide: only the CLI part changed in the
   window -> `agent harness`; only the model part -> `model`.
6. `subject`: it moved alone, unattributed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

NEAR_DAYS = 3  # moves whose spans come this close are one event (the changepoints' "release nearby")
ONSET_DAYS = 14  # an alarm's onset: its subject's own changepoint the same way this far back
SIGNIFICANT = 0.05  # an offline changepoint counts as a move below this paired p-value
SHARE = 2 / 3  # of the (vendor, model) groups: as many as the harness-suspect rule asks of subjects

FROZEN, LATEST = "frozen", "latest"
LANES = (FROZEN, LATEST)
LABELS = ("evaluation harness", "agent harness", "provider", "model", "subject")


@dataclass(frozen=True)
class Lane:
    """What a subject is made of: who serves the model, the model, the CLI and how it is pinned."""

    vendor: str = ""  # anthropic, openai, a base_url's host; "" unknown
    model: str = ""
    cli: str = ""  # the agent harness: claude-code, codex, bash-loop, ...
    lane: str = LATEST  # frozen: the CLI pinned to `pin`; latest: it follows the releases
    pin: str = ""

    @property
    def pair(self) -> tuple[str, str] | None:
        """The (vendor, model) its lanes share; None when either is unknown."""
        return (self.vendor, self.model) if self.vendor and self.model else None

    @property
    def harness(self) -> str:
        return f"{self.cli or '?'} {self.pin if self.lane == FROZEN and self.pin else self.lane}"


@dataclass(frozen=True)
class Move:
    subject: str
    date: str  # YYYY-MM-DD: the alarm's or changepoint's day
    direction: int  # +1 up, -1 down
    source: str  # "confirmed", "alarm", "changepoint", "suspect day"


@dataclass(frozen=True)
class Release:
    subject: str
    date: str  # the first day the new version ran
    kind: str  # "cli" | "model"
    old: str
    new: str

    def __str__(self) -> str:
        what = "CLI release" if self.kind == "cli" else "model change"
        return f"{what} {self.old} -> {self.new} on {self.date}"


@dataclass(frozen=True)
class Suspect:
    date: str
    controls_failed: bool  # the gold/empty controls failed on many tasks that day
    control_share: float | None = None


@dataclass(frozen=True)
class Evidence:
    lanes: Mapping[str, Lane]
    moves: Sequence[Move] = ()
    suspects: Sequence[Suspect] = ()
    releases: Sequence[Release] = ()
    observed: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # subject -> first, last day

    def lane(self, subject: str) -> Lane:
        return self.lanes.get(subject, Lane())


@dataclass(frozen=True)
class Attribution:
    label: str  # one of LABELS
    reason: str  # one line naming the evidence


def _day(text: str) -> int:
    return dt.date.fromisoformat(str(text)[:10]).toordinal()


def span(move: Move, moves: Sequence[Move]) -> tuple[int, int]:
    """(onset, seen) as day numbers: a changepoint is one day; an alarm starts at its subject's own
    changepoint the same way in the ONSET_DAYS before it, else on its day."""
    seen = _day(move.date)
    if move.source == "changepoint":
        return seen, seen
    onsets = [
        _day(m.date)
        for m in moves
        if m.subject == move.subject
        and m.source == "changepoint"
        and m.direction == move.direction
        and 0 <= seen - _day(m.date) <= ONSET_DAYS
    ]
    return max(onsets, default=seen), seen


def _near(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] <= b[1] + NEAR_DAYS and a[1] >= b[0] - NEAR_DAYS


def _group(name: str, lane: Lane) -> tuple[str, str]:
    return lane.pair or ("", name)  # an unknown vendor or model: the subject is its own group


def _vendor(name: str, lane: Lane) -> str:
    return lane.vendor or f"?{name}"


def attribute(shift: Move, evidence: Evidence) -> Attribution:
    """The lane a shift is attributed to and a one-line reason (see the module's rule)."""
    moves = list(evidence.moves)
    window = span(shift, moves)
    when = {
        m.subject: m
        for m in sorted(moves, key=lambda m: m.date, reverse=True)
        if m.direction == shift.direction and _near(span(m, moves), window)
    }
    when[shift.subject] = shift
    movers = set(when)
    way = "up" if shift.direction > 0 else "down"
    lanes = {name: evidence.lane(name) for name in {*evidence.lanes, *movers}}
    observed = {
        name
        for name, (first, last) in evidence.observed.items()
        if _day(first) <= window[0] and _day(last) >= window[1]
    } | movers
    lane = lanes[shift.subject]

    def nearby(day: str) -> bool:
        return window[0] - NEAR_DAYS <= _day(day) <= window[1] + NEAR_DAYS

    def named(names) -> str:
        shown = [f"{n} ({when[n].source} {when[n].date})" if n in when else n for n in sorted(names)]
        return ", ".join(shown[:4]) + (f" and {len(shown) - 4} more" if len(shown) > 4 else "")

    controls = [s for s in evidence.suspects if s.controls_failed and nearby(s.date)]
    if controls:
        share = controls[0].control_share
        failed = f" on {share:.0%} of tasks" if share is not None else ""
        return Attribution(
            "evaluation harness",
            f"gold/empty controls failed{failed} on {controls[0].date}, a harness-suspect day",
        )
    vendors = {_vendor(n, lanes[n]) for n in movers}
    groups = {_group(n, lanes[n]) for n in observed}
    moved_groups = {_group(n, lanes[n]) for n in movers}
    if len(vendors) >= 2 and len(moved_groups) >= max(2, SHARE * len(groups)):
        return Attribution(
            "evaluation harness",
            f"{len(movers)} subjects of {len(vendors)} vendors moved {way} together "
            f"({len(moved_groups)} of {len(groups)} models): {named(movers)}",
        )
    mine = [r for r in evidence.releases if r.subject == shift.subject and nearby(r.date)]
    cli = [r for r in mine if r.kind == "cli"]
    model = [r for r in mine if r.kind == "model"]
    if lane.lane == LATEST:
        on_harness = {n for n in movers if lanes[n].lane == LATEST and lanes[n].cli == lane.cli}
        pairs = {lanes[n].pair for n in on_harness} - {None}
        contrast = {n for n in observed - on_harness if lanes[n].pair in pairs}
        if contrast and not contrast & movers:
            return Attribution(
                "agent harness",
                f"only the {lane.harness} lane moved {way}; {named(contrast)} "
                f"({', '.join(sorted({lanes[n].harness for n in contrast}))}) did not; "
                + (str(cli[0]) if cli else f"no {lane.cli or 'CLI'} release within {NEAR_DAYS} days"),
            )
    if lane.vendor:
        kin = {n for n in movers if lanes[n].vendor == lane.vendor and lanes[n].model}
        models = {lanes[n].model for n in kin}
        if len(models) >= 2:
            return Attribution(
                "provider",
                f"{lane.vendor}'s models {', '.join(sorted(models))} moved {way} together: {named(kin)}",
            )
    partners = {n for n in observed - {shift.subject} if lane.pair and lanes[n].pair == lane.pair}
    if partners & movers:
        change = str(model[0]) if model else "no model version change recorded (a silent change)"
        return Attribution(
            "model",
            f"both lanes of {lane.model} moved {way}: {shift.subject} and "
            f"{named(partners & movers)}; {change}",
        )
    if cli and not model and not partners:
        return Attribution(
            "agent harness", f"{cli[0]}; no other lane of {lane.model or 'its model'} to compare"
        )
    if model and not cli and not partners:
        return Attribution("model", f"{model[0]}; no other lane of {lane.model or 'its model'} to compare")
    if partners:
        return Attribution(
            "subject",
            f"moved {way} alone: {named(partners)} ({', '.join(sorted(lanes[n].harness for n in partners))}) "
            "did not" + (f"; {'; '.join(map(str, mine))}" if mine else ""),
        )
    return Attribution(
        "subject",
        f"no other subject moved {way} within {NEAR_DAYS} days"
        + (
            f"; {' and '.join(map(str, mine))} (CLI and model together)"
            if cli and model
            else "; no release nearby"
        ),
    )
