"""Who moved a shift: the model, the agent harness, the evaluation harness, the provider, or the
subject alone. A pure rule over what the detector and the config already know.

Inputs: the shift (a subject, a day, a direction), every subject's lane (vendor, model, CLI, and
whether that CLI is `frozen` at a pinned version or follows `latest`), the moves the detector
saw (confirmed shifts, alarms that were not cleared, offline changepoints with p < 0.05, and the
subjects that moved on a harness-suspect day), each subject's daily z-scores (the monitor's),
the harness-suspect days, and the releases (the CLI part and the model part of each subject's
version string, separately).

**The window.** A move spans from its onset to the day it was seen: an offline changepoint is
one day; an alarm or confirmed shift starts at the later of its subject's own offline
changepoint the same way in the `ONSET_DAYS` before it (the segmentation places onsets, alarms
come after them) and the day its own CUSUM of daily z-scores last left zero (the classic
change-time estimate; a changepoint two days from the end of a history is often a day early),
else on its own day. Another subject moved with the shift when one of its moves points the same way
and their spans come within `NEAR_DAYS` of each other, or when its own daily z-scores over the
shift's days add up (sum / sqrt(days)) to `Z_MOVED` or more the same way: a lane hit by the
same change often has no alarm of its own yet on the day the first lane's alert is confirmed.
The shift's days are a changepoint's first `SPAN_DAYS` days, or an alarm's days from its onset
to its day. A release or a suspect day belongs to a shift when it falls within `NEAR_DAYS` of
the shift's span. A subject can speak against a shift (a lane that "did not move") only when it
has data from the shift's onset to its day.

**The rule**, first match wins (this order is the tie-breaking):
1. `evaluation harness`: the gold/empty controls failed on a harness-suspect day in the window;
   or subjects of at least two (known) vendors moved together (each by a move of its own: z-scores
   alone, tested across every subject, would find such company by chance), covering at least
   two thirds of the (vendor, model) groups observed: the one thing they share is our harness.
2. `agent harness`: the shift is on a `latest` lane and its model's other lanes (a frozen lane
   of the same model, or the same model under another CLI) were observed and did not move; when
   its model has no other lane, the other models that moved on the same CLI's latest lane are
   the comparison. Names the CLI release in the window, if any.
3. `provider`: another model of the shift's vendor moved on every lane observed (and on one of
   them by a move of its own).
4. `model`: another lane of the same vendor and model moved the same way (both lanes moved).
   Names the model change in the window, or says there was none (a silent change).
5. No other lane to compare: the subject's own releases decide: only the CLI part changed in the
   window -> `agent harness`; only the model part -> `model`.
6. `subject`: it moved alone, unattributed.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

NEAR_DAYS = 3  # moves whose spans come this close are one event (the changepoints' "release nearby")
ONSET_DAYS = 14  # an alarm's onset: its subject's own changepoint the same way this far back
SPAN_DAYS = 3  # a changepoint's first days, over which the other lanes' z-scores are read
CUSUM_K = 0.75  # the monitor's reference value, for an alarm's change-time estimate
Z_MOVED = 2.0  # their sum / sqrt(days) beyond this, the shift's way, is a move (one-sided p 0.023)
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
    scores: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # subject -> day -> z

    def lane(self, subject: str) -> Lane:
        return self.lanes.get(subject, Lane())

    @cached_property
    def onsets(self) -> dict[tuple[str, int], list[int]]:
        """(subject, direction) -> the days of its offline changepoints that way."""
        found: dict[tuple[str, int], list[int]] = {}
        for m in self.moves:
            if m.source == "changepoint":
                found.setdefault((m.subject, m.direction), []).append(_day(m.date))
        return found

    def span(self, move: Move) -> tuple[int, int]:
        """(onset, seen) as day numbers: a changepoint is one day; an alarm starts at the later of
        its subject's own changepoint the same way in the ONSET_DAYS before it and the day its own
        CUSUM of z-scores last left zero (the classic change-time estimate), else on its day."""
        seen = _day(move.date)
        if move.source == "changepoint":
            return seen, seen
        near = [d for d in self.onsets.get((move.subject, move.direction), []) if 0 <= seen - d <= ONSET_DAYS]
        total, rose = 0.0, None
        for day in range(seen - ONSET_DAYS, seen + 1):
            if (z := self.z(move.subject, day)) is not None:
                total = max(0.0, total + move.direction * z - CUSUM_K)
                rose = day + 1 if total == 0 else (rose or day)
        found = [d for d in (*near, rose) if d is not None and d <= seen]
        return max(found, default=seen), seen

    @cached_property
    def spans(self) -> dict[str, list[tuple[Move, tuple[int, int]]]]:
        """subject -> its moves with their spans."""
        found: dict[str, list[tuple[Move, tuple[int, int]]]] = {}
        for m in self.moves:
            found.setdefault(m.subject, []).append((m, self.span(m)))
        return found

    def z(self, subject: str, day: int) -> float | None:
        """The subject's z-score on a day number (None where it has none)."""
        z = self.scores.get(subject, {}).get(dt.date.fromordinal(day).isoformat())
        return z if z is not None and math.isfinite(z) else None


@dataclass(frozen=True)
class Attribution:
    label: str  # one of LABELS
    reason: str  # one line naming the evidence


def _day(text: str) -> int:
    return dt.date.fromisoformat(str(text)[:10]).toordinal()


def _near(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] <= b[1] + NEAR_DAYS and a[1] >= b[0] - NEAR_DAYS


def _group(name: str, lane: Lane) -> tuple[str, str]:
    return lane.pair or ("", name)  # an unknown vendor or model: the subject is its own group


def attribute(shift: Move, evidence: Evidence) -> Attribution:
    """The lane a shift is attributed to and a one-line reason (see the module's rule)."""
    window = evidence.span(shift)
    way = "up" if shift.direction > 0 else "down"
    # a changepoint's first days; an alarm's days from its onset to its day
    days = (
        range(window[0], window[0] + SPAN_DAYS)
        if shift.source == "changepoint"
        else range(window[0], window[1] + 1)
    )
    observed = {
        name
        for name, (first, last) in evidence.observed.items()
        if _day(first) <= window[0] and _day(last) >= window[1]
    } | {shift.subject}
    seen: dict[str, str] = {shift.subject: f"{shift.source} {shift.date}"}  # mover -> what says it moved
    detected = {shift.subject}  # movers with a move of their own, not only their z-scores
    for name in {*evidence.spans, *evidence.scores} - {shift.subject}:
        moves = [
            (m, s)
            for m, s in evidence.spans.get(name, [])
            if m.direction == shift.direction and _near(s, window)
        ]
        if moves:
            first = min(moves, key=lambda ms: ms[0].date)[0]
            seen[name] = f"{first.source} {first.date}"
            detected.add(name)
            continue
        z = [v for v in (evidence.z(name, d) for d in days) if v is not None]
        if z and shift.direction * sum(z) / math.sqrt(len(z)) >= Z_MOVED:
            seen[name] = f"z {sum(z) / math.sqrt(len(z)):+.1f} over {len(z)} days"
    movers = set(seen)
    lanes = {name: evidence.lane(name) for name in {*evidence.lanes, *movers, *observed}}
    lane = lanes[shift.subject]

    def nearby(day: str) -> bool:
        return window[0] - NEAR_DAYS <= _day(day) <= window[1] + NEAR_DAYS

    def named(names) -> str:
        shown = [f"{n} ({seen[n]})" if n in seen else n for n in sorted(names)]
        return ", ".join(shown[:4]) + (f" and {len(shown) - 4} more" if len(shown) > 4 else "")

    def harnesses(names) -> str:
        return ", ".join(sorted({lanes[n].harness for n in names}))

    controls = [s for s in evidence.suspects if s.controls_failed and nearby(s.date)]
    if controls:
        share = controls[0].control_share
        failed = f" on {share:.0%} of tasks" if share is not None else ""
        return Attribution(
            "evaluation harness",
            f"gold/empty controls failed{failed} on {controls[0].date}, a harness-suspect day",
        )
    vendors = {lanes[n].vendor for n in detected if lanes[n].vendor}  # unknown ones prove nothing
    groups = {_group(n, lanes[n]) for n in observed}
    moved_groups = {_group(n, lanes[n]) for n in detected}
    if len(vendors) >= 2 and len(moved_groups) >= max(2, SHARE * len(groups)):
        return Attribution(
            "evaluation harness",
            f"{len(detected)} subjects of {len(vendors)} vendors moved {way} together "
            f"({len(moved_groups)} of {len(groups)} models): {named(detected)}",
        )
    releases = [r for r in evidence.releases if r.subject == shift.subject and nearby(r.date)]
    cli = [r for r in releases if r.kind == "cli"]
    model = [r for r in releases if r.kind == "model"]
    partners = {n for n in observed - {shift.subject} if lane.pair and lanes[n].pair == lane.pair}
    if lane.lane == LATEST:
        same = {n for n in movers if lanes[n].lane == LATEST and lanes[n].cli == lane.cli}
        contrast = {n for n in partners if lanes[n].lane != LATEST or lanes[n].cli != lane.cli}
        if not contrast:  # no other lane of this model: the other models on this CLI's latest lane
            pairs = {lanes[n].pair for n in same} - {None}
            contrast = {n for n in observed - same if lanes[n].pair in pairs}
        if contrast and not contrast & movers:
            return Attribution(
                "agent harness",
                f"only the {lane.harness} lane moved {way}; {named(contrast)} ({harnesses(contrast)}) "
                "did not; "
                + (str(cli[0]) if cli else f"no {lane.cli or 'CLI'} release within {NEAR_DAYS} days"),
            )
    if lane.vendor:
        kin = {n for n in movers if lanes[n].vendor == lane.vendor and lanes[n].model}
        others = {lanes[n].model for n in kin & detected} - {lane.model}
        whole = {m for m in others if all(n in movers for n in observed if lanes[n].pair == (lane.vendor, m))}
        if whole:
            models = ", ".join(sorted(whole | {lane.model}))
            kin = {n for n in kin if lanes[n].model in whole | {lane.model}}
            return Attribution(
                "provider", f"{lane.vendor}'s models {models} moved {way} together: {named(kin)}"
            )
    if partners & movers:
        change = str(model[0]) if model else "no model version change recorded (a silent change)"
        return Attribution(
            "model",
            f"both lanes of {lane.model} moved {way}: {shift.subject} and {named(partners & movers)}; "
            + change,
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
            f"moved {way} alone: {named(partners)} ({harnesses(partners)}) did not"
            + (f"; {'; '.join(map(str, releases))}" if releases else ""),
        )
    together = (
        "; ".join(map(str, releases)) + " (CLI and model together)" if cli and model else "no release nearby"
    )
    if detected - {shift.subject}:  # others moved too (detected), but share no model with it
        return Attribution(
            "subject",
            f"no lane it shares a model with moved; {named(detected - {shift.subject})} did; {together}",
        )
    return Attribution("subject", f"no other subject moved {way} within {NEAR_DAYS} days; {together}")
