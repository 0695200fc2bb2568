"""What a driver works with in one run: the session (prompt, workspace, transcript, time left,
the task's image), what it reports back (`Run`, `Usage`), and the `Driver` protocol itself."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pipeline.agents.process import redact
from pipeline.agents.runtime import HOST, Runtime
from pipeline.agents.workspace import Workspace


@dataclass(frozen=True)
class Usage:
    cost_usd: float = 0.0
    input_tokens: int = 0  # all input tokens, cached ones included
    output_tokens: int = 0
    cached_tokens: int = 0
    turns: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.cost_usd + other.cost_usd,
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_tokens + other.cached_tokens,
            self.turns + other.turns,
        )


@dataclass(frozen=True)
class Run:
    """How one run of a driver ended."""

    exit_class: str
    usage: Usage = Usage()
    transient: bool = False  # an API error worth retrying
    detail: str = ""


class Transcript:
    """The attempt's log, append-only, with every secret redacted on the way in."""

    def __init__(self, path: Path, secrets: tuple[str, ...]) -> None:
        self.path = path
        self.secrets = secrets
        self._lock = threading.Lock()
        self._handle = path.open("a", encoding="utf-8")

    def write(self, text: str) -> None:
        with self._lock:
            self._handle.write(redact(text, self.secrets))
            self._handle.flush()

    def note(self, text: str) -> None:
        self.write(f"# {text}\n")

    def event(self, **fields: object) -> None:
        self.write(json.dumps(fields, default=str) + "\n")

    def close(self) -> None:
        self._handle.close()


@dataclass(frozen=True)
class Session:
    """What a driver gets for one run."""

    prompt: str
    workspace: Workspace
    transcript: Transcript
    timeout_s: float
    image: str | None = None  # the task's own image (SWE-Bench-Pro), for drivers that run commands
    runtime: Runtime = HOST  # where a CLI runs: the host, or a container of the task's image


class Driver(Protocol):
    """One agent's command line and output format."""

    name: str
    secret_env: tuple[str, ...]  # host variables it hands the agent: redacted everywhere
    self_contained: bool  # its commands run where only the workspace is mounted (a container)

    def version(self) -> str: ...

    def sha256(self) -> str: ...  # of the executable it runs ("" when there is none)

    def run(self, session: Session) -> Run: ...
