"""Reading typed, bounded fields out of YAML mappings, with errors that name the field."""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def yaml_problem(err: yaml.YAMLError) -> str:
    """A YAML error in one line: where (line, column) and what, without the excerpt it quotes."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}" if mark else problem


class ConfigError(ValueError):
    """The tracking config is invalid; the message names the subject and the field."""


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


def _mapping(raw: dict, key: str, where: str) -> dict:
    value = raw.get(key) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: field {key!r} must be a mapping, got {value!r}")
    return value


_CRON_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))

_CRON_NAMES = {
    3: ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
    4: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
}


def _valid_cron(cron: str) -> bool:
    """Five fields of `*`, numbers, names, ranges, lists and steps, each within its range."""
    fields = cron.split()
    if len(fields) != 5:
        return False
    for index, text in enumerate(fields):
        low, high = _CRON_RANGES[index]
        names = _CRON_NAMES.get(index, [])
        for part in text.split(","):
            span, _, step = part.partition("/")
            if step and not (step.isdigit() and int(step) > 0):
                return False
            if span == "*":
                continue
            ends = span.split("-")
            if len(ends) > 2:
                return False
            values = []
            for end in ends:
                if end.lower() in names:
                    values.append(names.index(end.lower()) + (1 if index == 3 else 0))
                elif end.isdigit():
                    values.append(int(end))
                else:
                    return False
            if any(not low <= v <= high for v in values) or values != sorted(values):
                return False
    return True
