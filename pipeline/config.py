"""The one place that reads configuration: the tracking config and where state lives."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import yaml

DEFAULTS = Path(__file__).parent / "defaults"
ADAPTERS = ("simulated",)
SANDBOXES = ("auto", "docker", "process")


class ConfigError(ValueError):
    """The tracking config is invalid; the message names the subject and the field."""


def home() -> Path:
    """Where candlebench keeps its state: $CANDLEBENCH_HOME, else ./.candlebench."""
    return Path(os.environ.get("CANDLEBENCH_HOME", Path.cwd() / ".candlebench")).resolve()


def config_path() -> Path:
    """$CANDLEBENCH_CONFIG, else the home's tracking.yaml, else the packaged default."""
    if explicit := os.environ.get("CANDLEBENCH_CONFIG"):
        return Path(explicit).resolve()
    pinned = home() / "tracking.yaml"
    return pinned if pinned.exists() else DEFAULTS / "tracking.yaml"


@dataclass(frozen=True)
class Subject:
    name: str
    adapter: str
    label: str = ""
    scenario: Path | None = None
    settings: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TrackingConfig:
    path: Path
    suite: str
    sample_size: int
    sample_seed: int
    trials: int
    sandbox: str
    grading_workers: int
    grading_timeout_s: float
    history_days: int
    cron: str
    timezone: str
    subjects: tuple[Subject, ...]
    digest: str

    def subject(self, name: str) -> Subject:
        for subject in self.subjects:
            if subject.name == name:
                return subject
        raise KeyError(f"subject {name!r} is not in {self.path}")


def _need(mapping: dict, key: str, kind: type, where: str):
    if key not in mapping:
        raise ConfigError(f"{where}: missing field {key!r}")
    value = mapping[key]
    if kind is float and isinstance(value, int):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: field {key!r} must be {kind.__name__}, got {value!r}")
    return value


def load_config(path: Path | None = None) -> TrackingConfig:
    path = Path(path) if path else config_path()
    if not path.exists():
        raise ConfigError(f"tracking config {path} does not exist")
    text = path.read_text()
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    where = str(path)
    sample = raw.get("sample", {})
    schedule = raw.get("schedule", {})
    sandbox = raw.get("sandbox", "auto")
    if sandbox not in SANDBOXES:
        raise ConfigError(f"{where}: field 'sandbox' must be one of {SANDBOXES}, got {sandbox!r}")
    subjects = []
    for index, entry in enumerate(_need(raw, "subjects", list, where)):
        name = entry.get("name") if isinstance(entry, dict) else None
        at = f"{where}: subject {name or f'#{index + 1}'}"
        if not isinstance(entry, dict) or not isinstance(name, str) or not name:
            raise ConfigError(f"{at}: field 'name' must be a non-empty string")
        if "|" in name or "," in name:
            raise ConfigError(f"{at}: field 'name' must not contain '|' or ','")
        adapter = _need(entry, "adapter", str, at)
        if adapter not in ADAPTERS:
            raise ConfigError(f"{at}: field 'adapter' must be one of {ADAPTERS}, got {adapter!r}")
        scenario = None
        if adapter == "simulated":
            scenario = (path.parent / _need(entry, "scenario", str, at)).resolve()
            if not scenario.exists() and (DEFAULTS / entry["scenario"]).exists():
                scenario = DEFAULTS / entry["scenario"]
            if not scenario.exists():
                raise ConfigError(f"{at}: field 'scenario': file {scenario} does not exist")
        subjects.append(Subject(name=name, adapter=adapter, label=entry.get("label", ""),
                                scenario=scenario, settings=entry.get("settings", {}) or {}))
    names = [s.name for s in subjects]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: subject names must be unique, got {names}")
    config = TrackingConfig(
        path=path,
        suite=raw.get("suite", "demo"),
        sample_size=_need(sample, "size", int, f"{where}: sample") if sample else 40,
        sample_seed=int(sample.get("seed", 0)),
        trials=_need(raw, "trials", int, where),
        sandbox=sandbox,
        grading_workers=int(raw.get("grading_workers", 2)),
        grading_timeout_s=float(raw.get("grading_timeout_s", 120)),
        history_days=int(raw.get("history_days", 95)),
        cron=schedule.get("cron", "0 6 * * *"),
        timezone=schedule.get("timezone", "UTC"),
        subjects=tuple(subjects),
        digest=hashlib.sha256(text.encode()).hexdigest()[:12],
    )
    if config.trials < 1:
        raise ConfigError(f"{where}: field 'trials' must be at least 1")
    return config


def pin_demo_config(today: dt.date, target: Path | None = None) -> Path:
    """Copy the packaged config and scenario into the home, pinning the scenario's start date.

    The demo's story is told in day numbers; pinning keeps later days consistent with the
    history built today. An existing pinned config is left alone.
    """
    target = target or home()
    target.mkdir(parents=True, exist_ok=True)
    config = target / "tracking.yaml"
    if config.exists():
        return config
    days = int(yaml.safe_load((DEFAULTS / "tracking.yaml").read_text())["history_days"])
    scenario_text = (DEFAULTS / "scenario.yaml").read_text()
    start = today - dt.timedelta(days=days - 1)
    scenario_text = scenario_text.replace(
        "start_date: null ", f"start_date: {start.isoformat()}", 1
    )
    (target / "scenario.yaml").write_text(scenario_text)
    shutil.copyfile(DEFAULTS / "tracking.yaml", config)
    return config
