"""The tracking config: what runs every day, read and checked in one place; and the few
settings the Dagster code location needs when it is imported, read without failing."""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import re
import zoneinfo
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipeline import clock
from pipeline import sandbox as sandboxes
from pipeline.config.fields import (
    ConfigError,
    Price,
    _mapping,
    _need,
    _optional,
    _price,
    _valid_cron,
    yaml_problem,
)
from pipeline.config.paths import config_path
from pipeline.config.sandboxes import docker_host, sandbox_workers
from pipeline.config.subjects import Subject, _subject

TOP_FIELDS = (
    "suite",
    "run_scripts",
    "start_date",
    "sample",
    "trials",
    "sandbox",
    "sandbox_workers",
    "grading_workers",
    "docker_host",
    "grading_timeout_s",
    "grading_memory_mb",
    "grading_tmp_mb",
    "history_days",
    "schedule",
    "subjects",
    "prices",
    "alerts",
    "confirm_trials",
    "allow_untrusted_patches_without_sandbox",
    "apply_rule",
)


@dataclass(frozen=True)
class TrackingConfig:
    path: Path
    suite: str  # "demo", or the resolved path of a SWE-Bench-Pro rows file
    run_scripts: Path | None  # the rows' run_scripts/ folder (default: next to the rows file)
    sample_size: int
    sample_seed: int
    trials: int
    sandbox: str
    sandbox_workers: int  # containers at once inside a partition, and the size of the `sandbox` pool
    grading_timeout_s: float
    grading_memory_mb: int
    grading_tmp_mb: int
    history_days: int
    start_date: dt.date  # the first tracked day: date partitions start here
    cron: str
    timezone: str
    subjects: tuple[Subject, ...]
    prices: dict[str, Price]
    digest: str
    alerts: tuple = ()  # pipeline.report.alerts.Target: where confirmed shifts and harness suspects go
    confirm_trials: int = 12  # fresh trials an alarm buys, once per day (= stats.confirmation.RULE.trials)
    allow_untrusted_patches_without_sandbox: bool = False  # DANGER: real agents' patches on the host
    apply_rule: str | None = None  # "git_apply" or "lenient"; None: the suite's (Pro rows: git_apply)
    docker_host: str | None = None  # a Docker daemon elsewhere (as DOCKER_HOST); None: DOCKER_HOST or local

    @property
    def grading_workers(self) -> int:
        """The former name of `sandbox_workers`, still read from configs."""
        return self.sandbox_workers

    def subject(self, name: str) -> Subject:
        for subject in self.subjects:
            if subject.name == name:
                return subject
        raise KeyError(f"subject {name!r} is not in {self.path}")


SUBJECT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # a partition key, a folder, a glob


def load_config(path: Path | None = None) -> TrackingConfig:
    path = Path(path) if path else config_path()
    text, raw = _read(path)
    where = str(path)
    size, seed = _sample(raw, where)
    cron, timezone = _schedule(raw, where)
    suite, run_scripts = _suite(raw, path, where)
    sandbox = raw.get("sandbox", "auto")
    if sandbox not in sandboxes.names():
        raise ConfigError(f"{where}: field 'sandbox' must be one of {sandboxes.names()}, got {sandbox!r}")
    trials = _optional(raw, "trials", int, where, None, minimum=1)
    if trials is None:
        raise ConfigError(f"{where}: missing field 'trials'")
    unsandboxed = raw.get("allow_untrusted_patches_without_sandbox", False)
    if not isinstance(unsandboxed, bool):
        raise ConfigError(
            f"{where}: field 'allow_untrusted_patches_without_sandbox' must be true or "
            f"false, got {unsandboxed!r}"
        )
    apply_rule = raw.get("apply_rule")
    if apply_rule not in (None, "git_apply", "lenient"):
        raise ConfigError(f"{where}: field 'apply_rule' must be git_apply or lenient, got {apply_rule!r}")
    prices = _prices(raw, where)
    history_days = _optional(raw, "history_days", int, where, 95, minimum=1)
    return TrackingConfig(
        path=path,
        suite=suite,
        run_scripts=run_scripts,
        sample_size=size,
        sample_seed=seed,
        trials=trials,
        sandbox=sandbox,
        sandbox_workers=sandbox_workers(raw, where),
        # the demo's tests take seconds; a SWE-Bench-Pro task's can take many minutes
        grading_timeout_s=_optional(
            raw, "grading_timeout_s", float, where, 120.0 if suite == "demo" else 1800.0, minimum=1
        ),
        grading_memory_mb=_optional(raw, "grading_memory_mb", int, where, 2048, minimum=64),
        grading_tmp_mb=_optional(raw, "grading_tmp_mb", int, where, 256, minimum=1),
        history_days=history_days,
        start_date=_start_date(raw, where, timezone, history_days),
        cron=cron,
        timezone=timezone,
        subjects=_subjects(raw, where, path, trials, prices, size),
        prices=prices,
        digest=hashlib.sha256(text.encode()).hexdigest()[:12],
        alerts=_alerts(raw.get("alerts", []), where),
        confirm_trials=_optional(raw, "confirm_trials", int, where, TrackingConfig.confirm_trials, minimum=1),
        allow_untrusted_patches_without_sandbox=unsandboxed,
        apply_rule=apply_rule,
        docker_host=docker_host(raw, where),
    )


def _read(path: Path) -> tuple[str, dict]:
    """The file's text and its top-level mapping; unknown fields refused with the nearest name."""
    if not path.exists():
        raise ConfigError(f"tracking config {path} does not exist")
    text = path.read_text()
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {yaml_problem(err)}") from err
    except ValueError as err:  # a YAML timestamp that is no date, e.g. start_date: 2026-13-01
        raise ConfigError(
            f"{path}: a date is not a calendar date ({err}); write dates as real "
            "YYYY-MM-DD days (fields such as 'start_date')"
        ) from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of fields, got {type(raw).__name__}")
    if unknown := sorted(set(raw) - set(TOP_FIELDS)):
        hint = difflib.get_close_matches(unknown[0], TOP_FIELDS, n=1)
        known = f" (did you mean {hint[0]!r}?)" if hint else f"; known: {', '.join(TOP_FIELDS)}"
        raise ConfigError(f"{path}: unknown field {unknown[0]!r}{known}")
    return text, raw


def _sample(raw: dict, where: str) -> tuple[int, int]:
    sample = _mapping(raw, "sample", where)
    if unknown := sorted(set(sample) - {"design", "size", "seed"}):
        raise ConfigError(f"{where}: unknown field 'sample.{unknown[0]}' (known: design, size, seed)")
    if sample.get("design", "panel") != "panel":
        raise ConfigError(
            f"{where}: field 'sample.design' must be 'panel' (the only design so far), "
            f"got {sample['design']!r}"
        )
    return (
        _optional(sample, "size", int, f"{where}: sample", 40, minimum=1),
        _optional(sample, "seed", int, f"{where}: sample", 0),
    )


def _schedule(raw: dict, where: str) -> tuple[str, str]:
    schedule = _mapping(raw, "schedule", where)
    if unknown := sorted(set(schedule) - {"cron", "timezone"}):
        raise ConfigError(f"{where}: unknown field 'schedule.{unknown[0]}' (known: cron, timezone)")
    cron = _optional(schedule, "cron", str, f"{where}: schedule", "0 6 * * *")
    if not _valid_cron(cron):
        raise ConfigError(f"{where}: field 'schedule.cron' must be a 5-field cron string, got {cron!r}")
    timezone = _optional(schedule, "timezone", str, f"{where}: schedule", "UTC")
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as err:
        raise ConfigError(f"{where}: field 'schedule.timezone': unknown time zone {timezone!r}") from err
    return cron, timezone


def _prices(raw: dict, where: str) -> dict[str, Price]:
    prices = raw.get("prices") or {}
    if not isinstance(prices, dict):
        raise ConfigError(f"{where}: field 'prices' must map model names to prices")
    return {str(model): _price(value, f"{where}: field 'prices.{model}'") for model, value in prices.items()}


def _subjects(
    raw: dict, where: str, path: Path, trials: int, prices: dict, tasks: int
) -> tuple[Subject, ...]:
    """Each subject checked, its name by the one rule for names that become partition keys and
    folder names: letters, digits, '.', '_' and '-', at most 64, starting with a letter or digit."""
    subjects = []
    for index, entry in enumerate(_need(raw, "subjects", list, where)):
        name = entry.get("name") if isinstance(entry, dict) else None
        at = (
            f"{where}: subject {name or f'#{index + 1}'}"
            if isinstance(name, str) and name.isprintable()
            else f"{where}: subject #{index + 1}"
        )
        if not isinstance(entry, dict) or not isinstance(name, str) or not name:
            raise ConfigError(f"{at}: field 'name' must be a non-empty string")
        if not SUBJECT_NAME.fullmatch(name):
            raise ConfigError(
                f"{at}: field 'name' {name!r} must be 1-64 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit (it names a partition and a folder)"
            )
        subjects.append(_subject(entry, name, at, path, trials, prices, tasks))
    names = [s.name for s in subjects]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: subject names must be unique, got {names}")
    return tuple(subjects)


def _start_date(raw: dict, where: str, timezone: str, history_days: int) -> dt.date:
    """`start_date` (YYYY-MM-DD), else `history_days` back from today."""
    value = raw.get("start_date")
    if value is None:
        return clock.today(timezone) - dt.timedelta(days=history_days - 1)
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as err:
        raise ConfigError(f"{where}: field 'start_date' must be a date (YYYY-MM-DD), got {value!r}") from err


def _suite(raw: dict, path: Path, where: str) -> tuple[str, Path | None]:
    """`demo`, or a SWE-Bench-Pro rows file (relative to the config's folder) and its run_scripts/."""
    suite = _optional(raw, "suite", str, where, "demo")
    scripts = _optional(raw, "run_scripts", str, where, None)
    if suite == "demo":
        if scripts is not None:
            raise ConfigError(f"{where}: field 'run_scripts' belongs to a rows suite, not to 'demo'")
        return suite, None
    rows = (path.parent / suite).resolve()
    if rows.suffix not in (".jsonl", ".json", ".parquet") or not rows.is_file():
        raise ConfigError(
            f"{where}: field 'suite' must be 'demo' or an existing SWE-Bench-Pro rows "
            f"file (.jsonl, .json or .parquet); {rows} is not one"
        )
    folder = (path.parent / scripts).resolve() if scripts is not None else None
    if folder is not None and not folder.is_dir():
        raise ConfigError(f"{where}: field 'run_scripts': {folder} is not a folder")
    return str(rows), folder


def _alerts(entries: object, where: str) -> tuple:
    from pipeline.report.alerts import FORMATS, Target

    if not isinstance(entries, list):
        raise ConfigError(f"{where}: field 'alerts' must be a list of {{url, format}}")
    targets = []
    for index, entry in enumerate(entries):
        at = f"{where}: alerts #{index + 1}"
        if not isinstance(entry, dict) or not str(entry.get("url", "")).startswith(("http://", "https://")):
            raise ConfigError(f"{at}: field 'url' must be an http(s) URL")
        if entry.get("format", "json") not in FORMATS:
            raise ConfigError(f"{at}: field 'format' must be one of {FORMATS}")
        targets.append(Target(entry["url"], entry.get("format", "json")))
    return tuple(targets)


@dataclass(frozen=True)
class LocationSettings:
    """What the code location needs when it is imported: the schedule and where partitions start.

    Read without failing: a broken tracking config must not unload the location (every schedule
    and sensor would vanish from the UI). `error` says what is wrong; the schedule and the
    sensors fail their ticks with it, so the problem shows where people look.
    """

    cron: str
    timezone: str
    start_date: dt.date
    error: str = ""


def location_settings(path: Path | None = None) -> LocationSettings:
    try:
        config = load_config(path)
        return LocationSettings(config.cron, config.timezone, config.start_date)
    except ConfigError as err:
        fallback = LocationSettings("0 6 * * *", "UTC", clock.today() - dt.timedelta(days=94), str(err))
    # Keep what can be read of the schedule and the start, so a typo elsewhere moves nothing.
    try:
        raw = yaml.safe_load((Path(path) if path else config_path()).read_text()) or {}
        schedule = raw.get("schedule") or {}
        cron = str(schedule.get("cron", fallback.cron))
        timezone = str(schedule.get("timezone", fallback.timezone))
        zoneinfo.ZoneInfo(timezone)
        if len(cron.split()) != 5 or not _valid_cron(cron):
            cron = fallback.cron
        start = _start_date(raw, "", timezone, int(raw.get("history_days") or 95))
        return LocationSettings(cron, timezone, start, fallback.error)
    except Exception:  # anything unreadable: the defaults, and the error already recorded
        return fallback
