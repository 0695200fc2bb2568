"""Agents solve tasks and return attempts. The protocol is small; each adapter is one file.

`model` holds the `Agent` protocol and the `Attempt` record, `exits` how attempts end. Adapters,
chosen by name from `ADAPTERS` (adding one is a new file and one line there), each declare
their settings beside their code:

- `simulated`: the scenario-driven demo agent (real patches, simulated success)
- `claude_code`, `codex`: the vendors' CLIs, pinned from npm by `cli_cache`
- `openai_compatible`: a bash-loop agent on any OpenAI-compatible chat endpoint
- `command`: any CLI agent, from a command template
- `replay`: predictions saved earlier (SWE-bench format), one file or folder per date

What the command-running adapters share is in `workspace`, `session`, `process` and
`workspace_agent`; `trajectory` (with `shell_commands`) reads each attempt's behaviour from its
transcript; `scripted_model` is a model endpoint that plays scripts to the real CLIs.
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.agents.exits import ExitClass
from pipeline.agents.model import Agent, Attempt, now, skipped, solve_all

if TYPE_CHECKING:
    from pipeline.config import Subject
    from pipeline.tasks.model import Task

ADAPTERS = {  # config `adapter:` -> "module:class"
    "simulated": "pipeline.agents.simulated:SimulatedAgent",
    "claude-code": "pipeline.agents.claude_code:ClaudeCode",
    "codex": "pipeline.agents.codex:Codex",
    "openai-compatible": "pipeline.agents.openai_compatible:OpenAICompatible",
    "command": "pipeline.agents.command:Command",
    "replay": "pipeline.agents.replay:ReplayAgent",
}

__all__ = [
    "ADAPTERS",
    "Agent",
    "AgentWorld",
    "Attempt",
    "ExitClass",
    "adapter",
    "build_agent",
    "now",
    "skipped",
    "solve_all",
]


@dataclass(frozen=True)
class AgentWorld:
    """What an adapter may need from the suite and the home to build its agent."""

    checkout: Callable[[Task, Path], None]
    transcripts: Path
    image_of: Callable[[Task], str | None] = lambda task: None  # noqa: E731 - the sandbox's own toolchain
    panel: tuple = ()  # today's sample (the simulated agent's difficulty spread)
    wrong_patch: Callable[[str], str] = lambda instance_id: ""  # noqa: E731 - no hand-written wrong fixes
    label_of: Callable[[str], str] = lambda instance_id: ""  # noqa: E731 - no difficulty labels
    default_start: dt.date | None = None  # where a scenario without start_date begins (None: today)
    sandbox: Callable[[], object] | None = None  # the grading sandbox (agent containers use its Docker)


def adapter(name: str) -> type:
    """The class of a named adapter. Each declares SETTINGS, needs_model, needs_price, paid_work,
    trusted_patches, `check_settings(values, raw, at, base)` and `build(spec, world)`."""
    if name not in ADAPTERS:
        raise ValueError(f"adapter {name!r} is not one of {', '.join(ADAPTERS)}")
    module, _, cls = ADAPTERS[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def build_agent(spec: Subject, world: AgentWorld) -> Agent:
    """The agent of a configured subject."""
    return adapter(spec.adapter).build(spec, world)
