"""Each subject's lane, derived from its config: who serves the model (`vendor`), the model, the
agent harness (`cli`) and whether that CLI is `frozen` at a pinned version or follows `latest`.

Derived: `claude-code` -> anthropic, `codex` -> openai, `openai-compatible` -> its base_url's
host, `simulated` -> its `vendor` setting (else the vendor of its `cli` setting, else
"simulated"), `command` and `replay` -> unknown. The lane is `frozen` when `settings.cli_version`
pins a version and `latest` when it is `latest` or unset (a CLI on PATH follows whatever is
installed). Subjects with the same vendor and model on different lanes are a pair: the
attribution compares them. The subject fields `vendor` and `lane` override the derivation.
"""

from __future__ import annotations

import os
import re
import shlex
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from pipeline.config.fields import ConfigError
from pipeline.stats.attribution import FROZEN, LANES, LATEST, Lane

if TYPE_CHECKING:
    from pipeline.config.subjects import Subject

VENDORS = {"claude-code": "anthropic", "codex": "openai"}  # a CLI -> whose models it serves
CLIS = {"claude-code": "claude-code", "codex": "codex", "openai-compatible": "bash-loop", "replay": "replay"}
VENDOR_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
PIN = re.compile(r"latest|\d+(?:\.\d+)*[\w.+-]*")


def _vendor(subject: Subject) -> str:
    settings = subject.settings
    if subject.adapter in VENDORS:
        return VENDORS[subject.adapter]
    if subject.adapter == "openai-compatible":
        return urlparse(settings.get("base_url") or "").hostname or ""
    if subject.adapter == "simulated":
        return settings.get("vendor") or VENDORS.get(settings.get("cli") or "", "simulated")
    return ""


def _cli(subject: Subject) -> str:
    if subject.adapter == "command":
        words = shlex.split(subject.settings.get("template") or "")
        return os.path.basename(words[0]) if words else "command"
    if subject.adapter == "simulated":
        return subject.settings.get("cli") or "simulated"
    return CLIS.get(subject.adapter, subject.adapter)


def lane_of(subject: Subject) -> Lane:
    """The subject's lane: the config's `vendor` and `lane` where given, else derived."""
    pin = subject.settings.get("cli_version") or ""
    lane = subject.lane or (FROZEN if pin and pin != LATEST else LATEST)
    return Lane(
        subject.vendor or _vendor(subject), subject.model, _cli(subject), lane, pin if lane == FROZEN else ""
    )


def check_lane(subject: Subject, at: str) -> None:
    """The overrides and the pin agree with each other; ConfigError naming the field otherwise."""
    if subject.vendor and not VENDOR_NAME.fullmatch(subject.vendor):
        raise ConfigError(
            f"{at}: field 'vendor' must be a name such as anthropic, openai or api.example.com, "
            f"got {subject.vendor!r}"
        )
    if subject.lane and subject.lane not in LANES:
        raise ConfigError(f"{at}: field 'lane' must be one of {LANES}, got {subject.lane!r}")
    pin = subject.settings.get("cli_version") or ""
    if pin and not PIN.fullmatch(pin):
        raise ConfigError(
            f"{at}: field 'settings.cli_version' must be a version such as 2.1.328 or 'latest', got {pin!r}"
        )
    if subject.lane == LATEST and pin and pin != LATEST:
        raise ConfigError(f"{at}: field 'lane' is latest, but settings.cli_version pins {pin}")
    if subject.lane == FROZEN and pin == LATEST:
        raise ConfigError(f"{at}: field 'lane' is frozen, but settings.cli_version follows latest")


def lanes_of(subjects) -> dict[str, Lane]:
    """subject name -> lane, for every configured subject."""
    return {s.name: lane_of(s) for s in subjects}
