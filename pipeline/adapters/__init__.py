"""Adapters for real agents, one file each, and the one function that builds them from config.

- `claude_code`: Claude Code CLI (`claude -p ... --output-format stream-json --verbose`)
- `codex`: Codex CLI (`codex exec --json`)
- `openai_compatible`: a bash-loop agent on any OpenAI-compatible chat endpoint
- `command`: any CLI agent, from a command template
- `replay`: predictions saved earlier (SWE-bench format), one file or folder per date
- `workspace`: what the agents that run commands share (workspace, process, transcript, retries)

The `simulated` adapter stays in `pipeline.agents`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

from pipeline.adapters.claude_code import ClaudeCode
from pipeline.adapters.codex import Codex
from pipeline.adapters.command import Command
from pipeline.adapters.openai_compatible import OpenAICompatible
from pipeline.adapters.replay import ReplayAgent
from pipeline.adapters.workspace import Checkout, WorkspaceAgent
from pipeline.agents import Agent, Attempt
from pipeline.config import Subject
from pipeline.tasks import Task

DRIVERS = {"claude-code": ClaudeCode, "codex": Codex, "openai-compatible": OpenAICompatible,
           "command": Command}


def build_agent(spec: Subject, checkout: Checkout, transcripts: Path,
                image_of: Callable[[Task], str | None] | None = None) -> Agent:
    """The agent of a configured subject (any adapter but `simulated`).

    `image_of` names a task's own image (SWE-Bench-Pro's): agents whose commands run in a
    container (openai-compatible with `sandbox: docker`) run them there, with the task's toolchain.
    """
    if spec.adapter == "replay":
        return ReplayAgent(spec.name, Path(spec.settings["predictions"]))
    if spec.adapter not in DRIVERS:
        raise ValueError(f"subject {spec.name}: adapter {spec.adapter!r} is not available")
    return WorkspaceAgent(spec.name, DRIVERS[spec.adapter](spec), checkout, transcripts,
                          timeout_s=spec.timeout_s, retries=spec.retries, backoff_s=spec.backoff_s,
                          image_of=image_of)


def try_task(
    subject: str,
    instance_id: str,
    out: Path,
    config_file: Path | None = None,
    day: dt.date | None = None,
    trial: int = 0,
) -> Attempt:
    """One attempt outside Dagster; the workspace, transcript, patch and record stay in `out`."""
    from pipeline.config import home, load_config
    from pipeline.tracker import Tracker

    tracker = Tracker(home(), load_config(config_file))
    if instance_id not in tracker.tasks:
        known = ", ".join(sorted(tracker.tasks)[:5])
        raise KeyError(f"task {instance_id!r} is not in suite {tracker.config.suite!r} (e.g. {known})")
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    attempt = tracker.agent(subject).solve(tracker.tasks[instance_id], day or tracker.today(), trial,
                                           folder=out)
    (out / "patch.diff").write_text(attempt.patch)
    (out / "attempt.json").write_text(json.dumps(attempt.record(), indent=2) + "\n")
    return attempt
