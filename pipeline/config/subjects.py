"""A tracked subject: an agent, its model and settings, its budgets. Each adapter declares its
own settings (`pipeline.agents`); this module checks a subject's entry against them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.config.fields import _ENV_NAME, ConfigError, Price, _need, _optional, _price
from pipeline.config.lanes import check_lane
from pipeline.config.paths import DEFAULTS

SUBJECT_FIELDS = (
    "name",
    "adapter",
    "label",
    "model",
    "settings",
    "trials",
    "timeout_s",
    "daily_cost_cap_usd",
    "concurrency",
    "retries",
    "backoff_s",
    "price",
    "scenario",
    "vendor",
    "lane",
)


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
    concurrency: int | None = None  # attempts at once inside one partition; None: sandbox_workers
    retries: int = 3  # for transient API errors (HTTP 429/5xx, connection errors)
    backoff_s: float = 2.0  # first back-off; doubles with every retry
    price: Price | None = None
    vendor: str = ""  # overrides the vendor its adapter implies (pipeline.config.lanes)
    lane: str = ""  # frozen | latest: overrides the lane its cli_version implies


def _adapters() -> dict[str, str]:
    from pipeline.agents import ADAPTERS

    return ADAPTERS


def _adapter(name: str) -> type:
    """The adapter class, which declares its settings and what a subject of it needs."""
    from pipeline.agents import adapter

    return adapter(name)


def _settings(adapter: str, raw: object, at: str, base: Path) -> dict:
    """The adapter's settings with defaults filled in; unknown or mistyped settings fail here."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{at}: field 'settings' must be a mapping, got {raw!r}")
    kind = _adapter(adapter)
    schema = kind.SETTINGS
    unknown = sorted(set(raw) - set(schema))
    if unknown:
        raise ConfigError(
            f"{at}: field 'settings.{unknown[0]}' is not a {adapter} setting "
            f"(known: {', '.join(schema) or 'none'})"
        )
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
    return kind.check_settings(values, raw, at, base)


def _subject(entry: dict, name: str, at: str, path: Path, trials: int, prices: dict) -> Subject:
    unknown = sorted(set(entry) - set(SUBJECT_FIELDS))
    if unknown:
        raise ConfigError(f"{at}: unknown field {unknown[0]!r} (known: {', '.join(SUBJECT_FIELDS)})")
    adapter = _need(entry, "adapter", str, at)
    if adapter not in _adapters():
        raise ConfigError(f"{at}: field 'adapter' must be one of {tuple(_adapters())}, got {adapter!r}")
    scenario = None
    if adapter == "simulated":  # its one field outside `settings`: the scenario file
        scenario = (path.parent / _need(entry, "scenario", str, at)).resolve()
        if not scenario.exists() and (DEFAULTS / entry["scenario"]).exists():
            scenario = DEFAULTS / entry["scenario"]
        if not scenario.exists():
            raise ConfigError(f"{at}: field 'scenario': file {scenario} does not exist")
    model = _optional(entry, "model", str, at, "")
    if _adapter(adapter).needs_model and not model:
        raise ConfigError(f"{at}: missing field 'model' (the {adapter} adapter needs one)")
    price = _price(entry["price"], f"{at}: field 'price'") if entry.get("price") is not None else None
    price = price or prices.get(model)
    if _adapter(adapter).needs_price and price is None:
        raise ConfigError(
            f"{at}: field 'price': no price for model {model!r}; add it under the top-level 'prices' "
            "(USD per million tokens: input, output, cached_input; 0 for a local model)"
        )
    subject = Subject(
        name=name,
        adapter=adapter,
        label=_optional(entry, "label", str, at, ""),
        scenario=scenario,
        settings=_settings(adapter, entry.get("settings"), at, path.parent),
        model=model,
        trials=_optional(entry, "trials", int, at, trials, minimum=1),
        timeout_s=_optional(entry, "timeout_s", float, at, 1800.0, minimum=0.001),
        daily_cost_cap_usd=_optional(entry, "daily_cost_cap_usd", float, at, None, minimum=0),
        concurrency=_optional(entry, "concurrency", int, at, None, minimum=1),
        retries=_optional(entry, "retries", int, at, 3, minimum=0),
        backoff_s=_optional(entry, "backoff_s", float, at, 2.0, minimum=0),
        price=price,
        vendor=_optional(entry, "vendor", str, at, ""),
        lane=_optional(entry, "lane", str, at, ""),
    )
    check_lane(subject, at)
    if scenario is not None:  # checked whole now, not when the first attempt runs
        from pipeline.agents.simulated import read_scenario

        try:
            read_scenario(scenario, name)
        except ValueError as err:
            raise ConfigError(f"{at}: field 'scenario': {err}") from None
    return subject
