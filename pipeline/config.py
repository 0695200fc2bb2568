"""The one place that reads configuration: the tracking config and where state lives."""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import os
import re
import shlex
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pipeline import clock

DEFAULTS = Path(__file__).parent / "defaults"
PROJECT_ROOT = Path(__file__).resolve().parent.parent  # the checkout: workspace.yaml, dagster.yaml
ADAPTERS = ("simulated", "claude-code", "codex", "openai-compatible", "command", "replay")
SANDBOXES = ("auto", "docker", "bubblewrap", "process")
PERMISSION_MODES = ("default", "acceptEdits", "plan", "bypassPermissions", "dontAsk")
CODEX_SANDBOXES = ("read-only", "workspace-write", "danger-full-access")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CLI_VERSION = re.compile(r"latest|\d+\.\d+\.\d+[\w.+-]*")


class ConfigError(ValueError):
    """The tracking config is invalid; the message names the subject and the field."""


def home() -> Path:
    """Where candlebench keeps its state: $CANDLEBENCH_HOME, else the checkout's .candlebench.

    The same from any folder: a command run elsewhere reads the home the demo wrote, not a new
    empty one. An installation without a checkout keeps its state in ~/.candlebench.
    """
    if explicit := os.environ.get("CANDLEBENCH_HOME"):
        return Path(explicit).resolve()
    if (PROJECT_ROOT / "workspace.yaml").is_file():
        return PROJECT_ROOT / ".candlebench"
    return Path.home() / ".candlebench"


def cli_cache_root() -> Path:
    """Where the pinned agent CLIs are kept: $CANDLEBENCH_CLIS (shareable), else the home's clis/."""
    explicit = os.environ.get("CANDLEBENCH_CLIS")
    return Path(explicit).resolve() if explicit else home() / "clis"


def config_path() -> Path:
    """$CANDLEBENCH_CONFIG, else the home's tracking.yaml, else the packaged default."""
    if explicit := os.environ.get("CANDLEBENCH_CONFIG"):
        return Path(explicit).resolve()
    pinned = home() / "tracking.yaml"
    return pinned if pinned.exists() else DEFAULTS / "tracking.yaml"


@dataclass(frozen=True)
class Price:
    """USD per million tokens; `cached_input` applies to the cached part of the input."""

    input: float
    output: float
    cached_input: float

    def cost(self, input_tokens: int, output_tokens: int, cached_tokens: int) -> float:
        fresh = max(input_tokens - cached_tokens, 0)
        return (fresh * self.input + cached_tokens * self.cached_input + output_tokens * self.output) / 1e6


@dataclass(frozen=True)
class Setting:
    """One adapter setting: its type, its default, and the values it may take."""

    kind: type
    default: object = None
    required: bool = False
    choices: tuple = ()


_ENV = Setting(list, [])  # names of host environment variables passed to the agent (never logged)
SETTINGS: dict[str, dict[str, Setting]] = {
    "simulated": {},
    "claude-code": {
        "executable": Setting(str, "claude"),
        "cli_version": Setting(str),  # a pinned version (or `latest`) from the CLI cache, not PATH
        "base_url": Setting(str, ""),  # ANTHROPIC_BASE_URL: a gateway, a relay, the scripted model
        "max_turns": Setting(int, 50),
        "max_budget_usd": Setting(float),
        "permission_mode": Setting(str, "bypassPermissions", choices=PERMISSION_MODES),
        "allowed_tools": Setting(list, []),
        "disallowed_tools": Setting(list, []),
        "append_system_prompt": Setting(str, ""),
        "env": _ENV,
    },
    "codex": {
        "executable": Setting(str, "codex"),
        "cli_version": Setting(str),
        "sandbox": Setting(str, "workspace-write", choices=CODEX_SANDBOXES),
        "max_turns": Setting(int),
        "max_budget_usd": Setting(float),
        "ephemeral": Setting(bool, True),
        "config": Setting(dict, {}),
        "env": _ENV,
    },
    "openai-compatible": {
        "base_url": Setting(str, required=True),
        "api_key_env": Setting(str, ""),
        "max_turns": Setting(int, 50),
        "max_budget_usd": Setting(float),
        "command_timeout_s": Setting(float, 60.0),
        "request_timeout_s": Setting(float, 300.0),
        "sandbox": Setting(str, "process", choices=("process", "docker", "bubblewrap")),
        "temperature": Setting(float, 0.0),
        "output_chars": Setting(int, 10_000),
    },
    "command": {
        "template": Setting(str, required=True),
        "version_command": Setting(str, ""),
        "cost_regex": Setting(str, ""),
        "input_tokens_regex": Setting(str, ""),
        "output_tokens_regex": Setting(str, ""),
        "cached_tokens_regex": Setting(str, ""),
        "turns_regex": Setting(str, ""),
        "budget_regex": Setting(str, ""),
        "env": _ENV,
    },
    "replay": {"predictions": Setting(str, required=True)},
}
NEEDS_MODEL = ("claude-code", "codex", "openai-compatible")
NEEDS_PRICE = ("codex", "openai-compatible")
TOP_FIELDS = ("suite", "run_scripts", "start_date", "sample", "trials", "sandbox", "grading_workers",
              "grading_timeout_s", "grading_memory_mb", "grading_tmp_mb", "history_days", "schedule",
              "subjects", "prices", "alerts", "confirm_trials", "allow_untrusted_patches_without_sandbox")
SUBJECT_FIELDS = ("name", "adapter", "label", "model", "settings", "trials", "timeout_s",
                  "daily_cost_cap_usd", "concurrency", "retries", "backoff_s", "price", "scenario")


@dataclass(frozen=True)
class Subject:
    name: str
    adapter: str
    label: str = ""
    scenario: Path | None = None
    settings: dict = field(default_factory=dict)  # the adapter's settings, defaults filled in
    model: str = ""
    trials: int = 1
    timeout_s: float = 1800.0  # wall time of one attempt, retries included
    daily_cost_cap_usd: float | None = None  # no new attempt starts once the day's cost reaches it
    concurrency: int = 1  # attempts running at once inside one partition
    retries: int = 3  # for transient API errors (HTTP 429/5xx, connection errors)
    backoff_s: float = 2.0  # first back-off; doubles with every retry
    price: Price | None = None


@dataclass(frozen=True)
class TrackingConfig:
    path: Path
    suite: str  # "demo", or the resolved path of a SWE-Bench-Pro rows file
    run_scripts: Path | None  # the rows' run_scripts/ folder (default: next to the rows file)
    sample_size: int
    sample_seed: int
    trials: int
    sandbox: str
    grading_workers: int
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
    alerts: tuple = ()  # pipeline.alerts.Target: where confirmed shifts and harness suspects go
    confirm_trials: int = 3  # extra trials a candidate shift asks for, at most once per day
    allow_untrusted_patches_without_sandbox: bool = False  # DANGER: real agents' patches on the host

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


def _price(value: object, where: str) -> Price:
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a mapping with 'input' and 'output' (USD per million tokens)")
    unknown = sorted(set(value) - {"input", "output", "cached_input"})
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {unknown}")
    numbers = {k: _need(value, k, float, where) for k in ("input", "output")}
    cached = _need(value, "cached_input", float, where) if "cached_input" in value else numbers["input"]
    if min(*numbers.values(), cached) < 0:
        raise ConfigError(f"{where}: prices must not be negative")
    return Price(numbers["input"], numbers["output"], cached)


def _optional(entry: dict, key: str, kind: type, at: str, default, minimum: float | None = None):
    if key not in entry or entry[key] is None:
        return default
    value = _need(entry, key, kind, at)
    if minimum is not None and value < minimum:
        raise ConfigError(f"{at}: field {key!r} must be at least {minimum}, got {value!r}")
    return value


def _settings(adapter: str, raw: object, at: str, base: Path) -> dict:
    """The adapter's settings with defaults filled in; unknown or mistyped settings fail here."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{at}: field 'settings' must be a mapping, got {raw!r}")
    schema = SETTINGS[adapter]
    unknown = sorted(set(raw) - set(schema))
    if unknown:
        raise ConfigError(f"{at}: field 'settings.{unknown[0]}' is not a {adapter} setting "
                          f"(known: {', '.join(schema) or 'none'})")
    values = {}
    for key, spec in schema.items():
        name = f"settings.{key}"
        if raw.get(key) is None:
            if spec.required:
                raise ConfigError(f"{at}: missing field {name!r}")
            values[key] = spec.default.copy() if isinstance(spec.default, list | dict) else spec.default
            continue
        value = _need({name: raw[key]}, name, spec.kind, at)
        if spec.choices and value not in spec.choices:
            raise ConfigError(f"{at}: field {name!r} must be one of {spec.choices}, got {value!r}")
        if spec.kind in (int, float) and value <= 0 and key != "temperature":
            raise ConfigError(f"{at}: field {name!r} must be positive, got {value!r}")
        if spec.kind is list and not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{at}: field {name!r} must be a list of strings")
        if key.endswith("_regex") and value:
            try:
                re.compile(value)
            except re.error as err:
                raise ConfigError(f"{at}: field {name!r} is not a valid regex: {err}") from err
        values[key] = value
    for key in ("env", "api_key_env"):
        names = values.get(key) or []
        for env_name in [names] if isinstance(names, str) else names:
            if not _ENV_NAME.fullmatch(env_name):
                raise ConfigError(f"{at}: field 'settings.{key}': {env_name!r} is not a variable name")
    if adapter == "command":
        try:
            words = shlex.split(values["template"])
        except ValueError as err:
            raise ConfigError(f"{at}: field 'settings.template' cannot be split: {err}") from err
        if not words or not any(p in values["template"] for p in ("{prompt}", "{prompt_file}")):
            raise ConfigError(f"{at}: field 'settings.template' must pass the task with "
                              "{prompt} or {prompt_file}")
    if adapter in ("claude-code", "codex") and values["cli_version"] is not None:
        if "executable" in raw:
            raise ConfigError(f"{at}: set 'settings.executable' or 'settings.cli_version', not both")
        if not _CLI_VERSION.fullmatch(values["cli_version"]):
            raise ConfigError(f"{at}: field 'settings.cli_version' must be a version such as 2.1.328 or "
                              f"'latest', got {values['cli_version']!r}")
    if adapter == "codex":
        for key, value in values["config"].items():
            if not isinstance(value, str | int | float | bool | list):
                raise ConfigError(f"{at}: field 'settings.config.{key}' must be a scalar or a list")
    if adapter == "replay":
        source = (base / values["predictions"]).resolve()
        if not source.exists():
            raise ConfigError(f"{at}: field 'settings.predictions': {source} does not exist")
        values["predictions"] = str(source)
    return values


def _subject(entry: dict, name: str, at: str, path: Path, trials: int, prices: dict) -> Subject:
    unknown = sorted(set(entry) - set(SUBJECT_FIELDS))
    if unknown:
        raise ConfigError(f"{at}: unknown field {unknown[0]!r} (known: {', '.join(SUBJECT_FIELDS)})")
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
    model = _optional(entry, "model", str, at, "")
    if adapter in NEEDS_MODEL and not model:
        raise ConfigError(f"{at}: missing field 'model' (the {adapter} adapter needs one)")
    price = _price(entry["price"], f"{at}: field 'price'") if entry.get("price") is not None else None
    price = price or prices.get(model)
    if adapter in NEEDS_PRICE and price is None:
        raise ConfigError(
            f"{at}: field 'price': no price for model {model!r}; add it under the top-level 'prices' "
            "(USD per million tokens: input, output, cached_input; 0 for a local model)"
        )
    return Subject(
        name=name,
        adapter=adapter,
        label=_optional(entry, "label", str, at, ""),
        scenario=scenario,
        settings=_settings(adapter, entry.get("settings"), at, path.parent),
        model=model,
        trials=_optional(entry, "trials", int, at, trials, minimum=1),
        timeout_s=_optional(entry, "timeout_s", float, at, 1800.0, minimum=0.001),
        daily_cost_cap_usd=_optional(entry, "daily_cost_cap_usd", float, at, None, minimum=0),
        concurrency=_optional(entry, "concurrency", int, at, 1, minimum=1),
        retries=_optional(entry, "retries", int, at, 3, minimum=0),
        backoff_s=_optional(entry, "backoff_s", float, at, 2.0, minimum=0),
        price=price,
    )


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
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping of fields, got {type(raw).__name__}")
    if unknown := sorted(set(raw) - set(TOP_FIELDS)):
        hint = difflib.get_close_matches(unknown[0], TOP_FIELDS, n=1)
        known = f" (did you mean {hint[0]!r}?)" if hint else f"; known: {', '.join(TOP_FIELDS)}"
        raise ConfigError(f"{where}: unknown field {unknown[0]!r}{known}")
    sample = _mapping(raw, "sample", where)
    schedule = _mapping(raw, "schedule", where)
    if unknown := sorted(set(sample) - {"design", "size", "seed"}):
        raise ConfigError(f"{where}: unknown field 'sample.{unknown[0]}' (known: design, size, seed)")
    if sample.get("design", "panel") != "panel":
        raise ConfigError(f"{where}: field 'sample.design' must be 'panel' (the only design so far), "
                          f"got {sample['design']!r}")
    if unknown := sorted(set(schedule) - {"cron", "timezone"}):
        raise ConfigError(f"{where}: unknown field 'schedule.{unknown[0]}' (known: cron, timezone)")
    cron = _optional(schedule, "cron", str, f"{where}: schedule", "0 6 * * *")
    if len(cron.split()) != 5 or not _valid_cron(cron):
        raise ConfigError(f"{where}: field 'schedule.cron' must be a 5-field cron string, got {cron!r}")
    timezone = _optional(schedule, "timezone", str, f"{where}: schedule", "UTC")
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as err:
        raise ConfigError(f"{where}: field 'schedule.timezone': unknown time zone {timezone!r}") from err
    suite, run_scripts = _suite(raw, path, where)
    sandbox = raw.get("sandbox", "auto")
    if sandbox not in SANDBOXES:
        raise ConfigError(f"{where}: field 'sandbox' must be one of {SANDBOXES}, got {sandbox!r}")
    trials = _need(raw, "trials", int, where)
    if trials < 1:
        raise ConfigError(f"{where}: field 'trials' must be at least 1")
    unsandboxed = raw.get("allow_untrusted_patches_without_sandbox", False)
    if not isinstance(unsandboxed, bool):
        raise ConfigError(f"{where}: field 'allow_untrusted_patches_without_sandbox' must be true or "
                          f"false, got {unsandboxed!r}")
    prices_raw = raw.get("prices") or {}
    if not isinstance(prices_raw, dict):
        raise ConfigError(f"{where}: field 'prices' must map model names to prices")
    prices = {str(model): _price(value, f"{where}: field 'prices.{model}'")
              for model, value in prices_raw.items()}
    history_days = _optional(raw, "history_days", int, where, 95, minimum=1)
    subjects = []
    for index, entry in enumerate(_need(raw, "subjects", list, where)):
        name = entry.get("name") if isinstance(entry, dict) else None
        at = f"{where}: subject {name or f'#{index + 1}'}"
        if not isinstance(entry, dict) or not isinstance(name, str) or not name:
            raise ConfigError(f"{at}: field 'name' must be a non-empty string")
        if any(char in name for char in "|,/\\="):
            # '|' and ',' split partition keys; '/', '\' and '=' would break the lake's folder names
            raise ConfigError(f"{at}: field 'name' must not contain any of | , / \\ =")
        subjects.append(_subject(entry, name, at, path, trials, prices))
    names = [s.name for s in subjects]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: subject names must be unique, got {names}")
    config = TrackingConfig(
        path=path,
        suite=suite,
        run_scripts=run_scripts,
        sample_size=_optional(sample, "size", int, f"{where}: sample", 40, minimum=1),
        sample_seed=_optional(sample, "seed", int, f"{where}: sample", 0),
        trials=trials,
        sandbox=sandbox,
        grading_workers=_optional(raw, "grading_workers", int, where, 2, minimum=1),
        # the demo's tests take seconds; a SWE-Bench-Pro task's can take many minutes
        grading_timeout_s=_optional(raw, "grading_timeout_s", float, where,
                                    120.0 if suite == "demo" else 1800.0, minimum=1),
        grading_memory_mb=_optional(raw, "grading_memory_mb", int, where, 2048, minimum=64),
        grading_tmp_mb=_optional(raw, "grading_tmp_mb", int, where, 256, minimum=1),
        history_days=history_days,
        start_date=_start_date(raw, where, timezone, history_days),
        cron=cron,
        timezone=timezone,
        subjects=tuple(subjects),
        prices=prices,
        digest=hashlib.sha256(text.encode()).hexdigest()[:12],
        alerts=_alerts(raw.get("alerts", []), where),
        confirm_trials=_optional(raw, "confirm_trials", int, where, 3, minimum=1),
        allow_untrusted_patches_without_sandbox=unsandboxed,
    )
    return config


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


def _mapping(raw: dict, key: str, where: str) -> dict:
    value = raw.get(key) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: field {key!r} must be a mapping, got {value!r}")
    return value


def _valid_cron(cron: str) -> bool:
    from dagster._utils.schedules import is_valid_cron_string  # what the schedule itself accepts

    return is_valid_cron_string(cron)


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
        raise ConfigError(f"{where}: field 'suite' must be 'demo' or an existing SWE-Bench-Pro rows "
                          f"file (.jsonl, .json or .parquet); {rows} is not one")
    folder = (path.parent / scripts).resolve() if scripts is not None else None
    if folder is not None and not folder.is_dir():
        raise ConfigError(f"{where}: field 'run_scripts': {folder} is not a folder")
    return str(rows), folder


def _alerts(entries: object, where: str) -> tuple:
    from pipeline.alerts import FORMATS, Target

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
    config_text = (DEFAULTS / "tracking.yaml").read_text()
    config.write_text(config_text.replace("start_date: null ", f"start_date: {start.isoformat()}", 1))
    return config


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
