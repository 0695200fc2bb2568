"""The `simulated` adapter: a scenario-driven agent for demos and for testing the statistics.

Each attempt succeeds with probability sigmoid(theta(phase) - difficulty(task) + day_shock),
every draw seeded, and emits a real patch (the gold patch on success; otherwise an empty, a
partial, a wrong or a stale patch) so that grading is always real.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml
from scipy.optimize import brentq
from scipy.special import expit
from scipy.stats import norm

from pipeline import clock
from pipeline.agents.exits import ExitClass
from pipeline.agents.model import Attempt
from pipeline.config.fields import Setting
from pipeline.tasks.model import Task


def _uniform(*parts: object) -> float:
    """A deterministic uniform(0, 1) draw from the given key."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return (int.from_bytes(digest[:8], "big") + 0.5) / 2.0**64


def _file_sections(patch: str) -> list[str]:
    return [s for s in re.split(r"(?m)^(?=diff --git )", patch) if s.strip()]


def first_hunk(patch: str) -> str:
    """The gold patch cut to its first hunk: a partial fix ("" when there is only one hunk)."""
    sections = _file_sections(patch)
    hunks = [h for s in sections for h in re.split(r"(?m)^(?=@@ )", s)[1:]]
    if len(hunks) < 2:
        return ""
    header = re.split(r"(?m)^(?=@@ )", sections[0])[0]
    header = re.sub(r"(?m)^index [0-9a-f]+\.\.[0-9a-f]+.*\n", "", header)
    return header + hunks[0]


def does_not_apply(patch: str) -> str:
    """The gold patch against a stale base: its removed lines no longer match the file."""
    lines = patch.splitlines(keepends=True)
    out, changed = [], False
    for line in lines:
        if line.startswith("index "):
            continue  # no blob ids, so a three-way apply cannot rescue it
        if line.startswith("-") and not line.startswith("---") and line.strip("-\n").strip():
            line = line.rstrip("\n") + "  # stale\n"
            changed = True
        out.append(line)
    if not changed:  # a pure addition: aim it at a file the agent hallucinated
        return re.sub(
            r"(?m)^(diff --git a/|--- a/|\+\+\+ b/| b/)(\S+?)(\.py)", r"\1\2_hallucinated\3", "".join(out)
        )
    return "".join(out)


def wrong_fix(patch: str) -> str:
    """A patch that touches the right file but changes nothing that matters."""
    sections = _file_sections(patch)
    if not sections:
        return ""
    section = sections[0]
    path = re.search(r"(?m)^\+\+\+ b/(\S+)", section)
    hunk = re.search(r"(?m)^@@ -(\d+)(?:,\d+)? \+\d+(?:,\d+)? @@.*\n((?: .*\n)?)", section)
    if not path or not hunk or not hunk.group(2):
        return ""
    start, context = int(hunk.group(1)), hunk.group(2)
    return (
        f"diff --git a/{path.group(1)} b/{path.group(1)}\n--- a/{path.group(1)}\n"
        f"+++ b/{path.group(1)}\n@@ -{start},1 +{start},2 @@\n{context}"
        "+# TODO: handle the reported case\n"
    )


FAILURE_MODES = ("empty", "partial", "wrong_fix", "does_not_apply")


def read_scenario(path: Path, subject: str) -> dict:
    """A scenario file, checked whole before any attempt: ValueError naming the file and field."""
    try:
        scenario = yaml.safe_load(path.read_text())
    except ValueError as err:  # not a YAMLError: a YAML date like 2026-13-01
        raise ValueError(
            f"scenario {path}: a date is not a calendar date ({err}); write dates as real "
            "YYYY-MM-DD days (fields such as 'start_date')"
        ) from None
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"scenario {path}: {' '.join(str(err).split())}") from None
    where = f"scenario {path}"
    if not isinstance(scenario, dict):
        raise ValueError(f"{where}: expected a mapping with `subjects`")
    subjects = scenario.get("subjects")
    phases = subjects.get(subject) if isinstance(subjects, dict) else None
    if not isinstance(phases, list) or not phases:
        raise ValueError(f"{where}: no phases for subject {subject!r} under `subjects`")
    for number, phase in enumerate(phases, start=1):
        at = f"{where}: subject {subject!r}, phase {number}"
        if not isinstance(phase, dict) or set(phase) != {"day", "version", "pass_rate"}:
            raise ValueError(f"{at}: expected {{day, version, pass_rate}}, got {phase!r}")
        if not _number(phase["pass_rate"]) or not 0.0 <= phase["pass_rate"] <= 1.0:
            raise ValueError(f"{at}: pass_rate must be between 0 and 1, got {phase['pass_rate']!r}")
        if not isinstance(phase["day"], int) or isinstance(phase["day"], bool) or phase["day"] < 1:
            raise ValueError(f"{at}: day must be a whole number from 1, got {phase['day']!r}")
        if number > 1 and phase["day"] <= phases[number - 2]["day"]:
            raise ValueError(
                f"{at}: day {phase['day']} must come after the previous phase's day "
                f"{phases[number - 2]['day']} (phases in order, one per day)"
            )
    seed = scenario.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(f"{where}: seed must be a whole number, got {seed!r}")
    if not _number(scenario.get("noise", 0.0)) or scenario.get("noise", 0.0) < 0:
        raise ValueError(f"{where}: noise must be a number >= 0, got {scenario.get('noise')!r}")
    if scenario.get("start_date") is not None:
        try:
            dt.date.fromisoformat(str(scenario["start_date"]))
        except ValueError:
            raise ValueError(
                f"{where}: start_date {scenario['start_date']!r} is not a date (YYYY-MM-DD)"
            ) from None
    for field in ("difficulty_levels", "difficulty"):
        values = scenario.get(field) or {}
        if not isinstance(values, dict) or not all(_number(v) for v in values.values()):
            raise ValueError(f"{where}: {field} must map names to numbers, got {values!r}")
    modes = scenario.get("failure_modes", {"wrong_fix": 1.0})
    if not isinstance(modes, dict) or set(modes) - set(FAILURE_MODES):
        unknown = sorted(map(str, set(modes) - set(FAILURE_MODES))) if isinstance(modes, dict) else []
        raise ValueError(
            f"{where}: failure_modes must map some of {', '.join(FAILURE_MODES)} to weights"
            + (f"; unknown: {', '.join(unknown)}" if unknown else f", got {modes!r}")
        )
    if not all(_number(w) and w >= 0 for w in modes.values()) or not sum(modes.values()) > 0:
        raise ValueError(f"{where}: failure_modes weights must be >= 0 with a positive sum, got {modes}")
    return scenario


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Phase:
    day: int
    version: str
    pass_rate: float


class SimulatedAgent:
    """An agent whose success is drawn from a scenario; every draw is seeded and repeatable."""

    SETTINGS: dict = {  # besides the subject's `scenario`: its lane (pipeline.config.lanes)
        "vendor": Setting(str, ""),  # who serves the simulated model (default: the cli's vendor)
        "cli": Setting(str, ""),  # the agent harness it stands for, e.g. claude-code
        "cli_version": Setting(str),  # pinned (a frozen lane) or latest; the scenario's versions say what ran
    }
    needs_model = needs_price = False
    trusted_patches = True  # it only emits the gold patch and patches derived from it
    paid_work = False  # seeded and free: an interrupted attempt is simply run again

    @classmethod
    def check_settings(cls, values: dict, raw: dict, at: str, base: Path) -> dict:
        del raw, at, base
        return values

    @classmethod
    def build(cls, spec, world) -> SimulatedAgent:
        return cls(
            spec.name,
            spec.scenario,
            world.panel,
            wrong_patch=world.wrong_patch,
            label_of=world.label_of,
            default_start=world.default_start,
        )

    def __init__(
        self,
        subject: str,
        scenario_path: Path,
        panel: list[Task],
        wrong_patch: Callable[[str], str] | None = None,
        label_of: Callable[[str], str] | None = None,
        default_start: dt.date | None = None,
    ) -> None:
        scenario = read_scenario(Path(scenario_path), subject)
        self.subject = subject
        self.seed = scenario.get("seed", 0)
        self.noise = float(scenario.get("noise", 0.0))
        start = scenario.get("start_date") or default_start or clock.today()
        self.start = dt.date.fromisoformat(str(start))
        self.phases = sorted(
            (
                Phase(int(p["day"]), str(p["version"]), float(p["pass_rate"]))
                for p in scenario["subjects"][subject]
            ),
            key=lambda p: p.day,
        )
        levels = scenario.get("difficulty_levels", {})
        overrides = scenario.get("difficulty", {}) or {}
        self.difficulty = {
            t.instance_id: float(
                overrides.get(t.instance_id, levels.get(label_of(t.instance_id), 0.0) if label_of else 0.0)
            )
            for t in panel
        }
        self.modes = scenario.get("failure_modes", {"wrong_fix": 1.0})
        self.wrong_patch = wrong_patch
        self._theta: dict[float, float] = {}

    def day_number(self, day: dt.date) -> int:
        return (day - self.start).days + 1

    def phase(self, day: dt.date) -> Phase:
        number = self.day_number(day)
        current = self.phases[0]
        for phase in self.phases:
            if phase.day <= number:
                current = phase
        return current

    def version(self, on: dt.date | None = None) -> str:
        return self.phase(on or clock.today()).version

    def theta(self, rate: float) -> float:
        """The ability whose mean success over the panel equals `rate`."""
        if rate in (0.0, 1.0):  # always fails, always succeeds: no finite ability gives it
            return math.copysign(math.inf, rate - 0.5)
        if rate not in self._theta:
            b = list(self.difficulty.values()) or [0.0]
            self._theta[rate] = brentq(lambda t: sum(expit(t - x) for x in b) / len(b) - rate, -20, 20)
        return self._theta[rate]

    def success_probability(self, task: Task, day: dt.date) -> float:
        shock = self.noise * norm.ppf(_uniform(self.seed, "day", self.subject, day))
        logit = self.theta(self.phase(day).pass_rate) - self.difficulty.get(task.instance_id, 0.0)
        return float(expit(logit + shock))

    def _failure(self, task: Task, day: dt.date, trial: int) -> tuple[str, str]:
        u = _uniform(self.seed, "mode", self.subject, day, trial, task.instance_id)
        total = sum(self.modes.values())
        mode = list(self.modes)[-1]
        for name, weight in self.modes.items():
            if u < weight / total:
                mode = name
                break
            u -= weight / total
        candidates = {
            "empty": lambda: "",
            "partial": lambda: first_hunk(task.patch),
            "wrong_fix": lambda: (
                (self.wrong_patch(task.instance_id) if self.wrong_patch else "") or wrong_fix(task.patch)
            ),
            "does_not_apply": lambda: does_not_apply(task.patch),
        }
        for name in (mode, "wrong_fix", "empty"):
            patch = candidates[name]()
            if patch or name == "empty":
                return name, patch
        return "empty", ""

    def solve(self, task: Task, day: dt.date, trial: int, folder: Path | None = None) -> Attempt:
        del folder  # nothing runs, so there is no workspace to keep
        p = self.success_probability(task, day)
        success = _uniform(self.seed, "solve", self.subject, day, trial, task.instance_id) < p
        mode, patch = ("solved", task.patch) if success else self._failure(task, day, trial)
        u = _uniform(self.seed, "cost", self.subject, day, trial, task.instance_id)
        tokens_in = int(40_000 * math.exp(0.5 * norm.ppf(u)))
        tokens_out = int(tokens_in * 0.08)
        offset = dt.timedelta(hours=6 + 4 * trial, seconds=int(3000 * u))
        return Attempt(
            subject=self.subject,
            instance_id=task.instance_id,
            date=day,
            trial=trial,
            started_at=dt.datetime.combine(day, dt.time()) + offset,
            patch=patch,
            cost_usd=round(tokens_in * 3e-6 + tokens_out * 15e-6, 4),
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            cached_tokens=int(tokens_in * 0.6),
            turns=max(1, int(8 + 20 * u)),
            duration_s=round(60 + 400 * u, 1),
            exit_class=ExitClass.SUBMITTED,
            agent_version=self.version(day),
            transcript="",
            failure_mode=mode,
        )
