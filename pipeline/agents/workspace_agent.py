"""`WorkspaceAgent` turns any driver into an `Agent`: it prepares the workspace, runs the driver
within the time budget, retries transient API errors with exponential back-off from the base
state, and takes the patch as `git diff` against the base, with the subject's secrets redacted."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

from pipeline.agents import trajectory
from pipeline.agents.exits import ExitClass
from pipeline.agents.model import Attempt, now
from pipeline.agents.process import (
    backoff,
    cli_version,
    executable_sha256,
    pinned_binary,
    redact,
    secret_values,
)
from pipeline.agents.runtime import HOST, Runtime, choose_runtime
from pipeline.agents.session import Driver, Run, Session, Transcript, Usage
from pipeline.agents.workspace import Checkout, Workspace
from pipeline.config import ConfigError, Setting, Subject
from pipeline.tasks.model import Task

RUNTIME_SETTING = Setting(str, "auto", choices=("auto", "container", "host"))
ENV_SETTING = Setting(list, [])  # names of host environment variables handed to the agent (never logged)
CLI_VERSION = re.compile(r"latest|\d+\.\d+\.\d+[\w.+-]*")


class WorkspaceAgent:
    """An `Agent` made of a driver: workspace, time budget, retries, patch, transcript."""

    def __init__(
        self,
        subject: str,
        driver: Driver,
        checkout: Checkout,
        transcripts: Path,
        timeout_s: float = 1800.0,
        retries: int = 3,
        backoff_s: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        image_of: Callable[[Task], str | None] | None = None,
        runtime: Runtime = HOST,
    ) -> None:
        self.subject = subject
        self.driver = driver
        self.image_of = image_of or (lambda task: None)
        self.runtime = runtime
        self.checkout = checkout
        self.transcripts = Path(transcripts)
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.sleep = sleep
        self._version: str | None = None
        self._sha256: str | None = None

    def version(self, on: dt.date | None = None) -> str:
        del on  # a real agent is whatever is installed now
        if self._version is None:
            self._version = self.driver.version()
        return self._version

    def sha256(self) -> str:
        """The agent executable's sha256, hashed once per agent like its version."""
        if self._sha256 is None:
            self._sha256 = self.driver.sha256()
        return self._sha256

    @contextlib.contextmanager
    def _folder(self, folder: Path | None) -> Iterator[Path]:
        if folder is not None:
            Path(folder).mkdir(parents=True, exist_ok=True)
            yield Path(folder).resolve()
            return
        scratch = Path(tempfile.mkdtemp(prefix=f"cb-attempt-{os.getpid()}-"))
        try:
            yield scratch
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def transcript_path(self, task: Task, day: dt.date, trial: int) -> Path:
        return (
            self.transcripts
            / f"subject={quote(self.subject, safe='')}"
            / f"date={day}"
            / f"{task.instance_id}.trial{trial}.log"
        )

    def solve(self, task: Task, day: dt.date, trial: int, folder: Path | None = None) -> Attempt:
        started_at, clock = now(), time.monotonic()
        version = self.version(day)
        secrets = secret_values(self.driver.secret_env)
        with self._folder(folder) as root:
            self_contained = self.driver.self_contained or self.runtime.self_contained
            workspace = Workspace.create(root, task, self.checkout, self_contained)
            transcript = Transcript(root / "transcript.log", secrets)
            transcript.note(
                f"candlebench: subject {self.subject}, task {task.instance_id}, day {day}, "
                f"trial {trial}, agent {version}, runtime {self.runtime.name}"
            )
            run, usage, tries = Run(ExitClass.TIMEOUT, detail="no time to start"), Usage(), 0
            while (left := self.timeout_s - (time.monotonic() - clock)) > 0:
                tries += 1
                run = self.driver.run(
                    Session(task.prompt(), workspace, transcript, left, self.image_of(task), self.runtime)
                )
                usage = usage + run.usage
                delay = backoff(tries, self.backoff_s)
                if (
                    not run.transient
                    or tries > self.retries
                    or delay >= self.timeout_s - (time.monotonic() - clock)
                ):
                    break
                transcript.note(
                    f"transient API error ({run.detail[:200]}); retry {tries} of "
                    f"{self.retries} in {delay:g}s from the base state"
                )
                self.sleep(delay)
                workspace.reset()
            patch = redact(workspace.diff(), secrets)
            (root / "patch.diff").write_text(patch)
            transcript.note(
                f"exit class {run.exit_class} after {tries} run(s); patch {len(patch.splitlines())} lines"
            )
            transcript.close()
            behaviour = trajectory.read(self.driver.name, transcript.path.read_text(errors="replace"))
            kept = transcript.path
            if folder is None:
                kept = self.transcript_path(task, day, trial)
                kept.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(transcript.path, kept)
        return Attempt(
            subject=self.subject,
            instance_id=task.instance_id,
            date=day,
            trial=trial,
            started_at=started_at,
            patch=patch,
            cost_usd=round(usage.cost_usd, 6),
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_tokens=usage.cached_tokens,
            turns=usage.turns,
            duration_s=round(time.monotonic() - clock, 3),
            exit_class=run.exit_class,
            agent_version=version,
            agent_sha256=self.sha256(),
            transcript=str(kept),
            failure_mode="",
            detail=redact(run.detail, secrets)[:2000],
            tries=tries,
            **trajectory.columns(behaviour),
        )


class DriverAdapter:
    """The adapter side of a driver (an agent that runs as a process in a workspace): its
    settings, what it needs from a subject, and how it becomes an `Agent`."""

    SETTINGS: dict[str, Setting] = {}
    needs_model = False
    needs_price = False
    trusted_patches = False  # patches of real agents are untrusted code
    paid_work = True  # a vendor may bill every attempt: an interrupted one is never re-run (ledger)

    @classmethod
    def check_settings(cls, values: dict, raw: dict, at: str, base: Path) -> dict:
        """Rules beyond each setting's type and choices; raises ConfigError naming the field."""
        del raw, at, base
        return values

    @classmethod
    def build(cls, spec: Subject, world) -> WorkspaceAgent:
        return WorkspaceAgent(
            spec.name,
            cls(spec),
            world.checkout,
            world.transcripts,
            timeout_s=spec.timeout_s,
            retries=spec.retries,
            backoff_s=spec.backoff_s,
            image_of=world.image_of,
            runtime=cls.runtime(spec, world),
        )

    @classmethod
    def runtime(cls, spec: Subject, world) -> Runtime:
        del spec, world
        return HOST


class VendorCli(DriverAdapter):
    """A vendor's agent CLI (`name` is its CLI cache name): the pinned binary from the cache when
    `cli_version` is set, else `executable` on PATH; `KEYS` are its API-key variables."""

    KEYS: tuple[str, ...] = ()
    self_contained = False

    @classmethod
    def runtime(cls, spec: Subject, world) -> Runtime:
        """`settings.runtime`: `container` (the task's image, network none, the API relayed),
        `host`, or `auto`: a container for a CLI pinned from the cache (a self-contained native
        binary) when grading runs in Docker and we are root; else the host. An `executable` from
        PATH may be a Node script the task's image cannot run: `auto` keeps it on the host."""
        setting = spec.settings["runtime"]
        if setting == "auto" and not spec.settings["cli_version"]:
            return HOST
        return choose_runtime(setting, world.sandbox, spec.name)

    def __init__(self, subject: Subject) -> None:
        self.model = subject.model
        self.settings = subject.settings
        self.price = subject.price
        self.secret_env = tuple(dict.fromkeys([*self.KEYS, *self.settings["env"]]))  # redacted
        self._executable = ""

    def passthrough(self) -> dict[str, str]:
        """The host variables `settings.env` hands the agent (in a container too; never the keys)."""
        return {name: os.environ[name] for name in self.settings["env"] if name in os.environ}

    def executable(self) -> str:
        if not self._executable:
            pinned = self.settings["cli_version"]
            self._executable = pinned_binary(self.name, pinned) if pinned else self.settings["executable"]
        return self._executable

    def version(self) -> str:
        return f"{self.name} {cli_version([self.executable(), '--version'])} / {self.model}"

    def sha256(self) -> str:
        return executable_sha256(self.executable())


def check_cli_version(values: dict, raw: dict, at: str) -> None:
    """A CLI pinned from the cache (`cli_version`) or one on PATH (`executable`), not both."""
    if values.get("cli_version") is None:
        return
    if "executable" in raw:
        raise ConfigError(f"{at}: set 'settings.executable' or 'settings.cli_version', not both")
    if not CLI_VERSION.fullmatch(values["cli_version"]):
        raise ConfigError(
            f"{at}: field 'settings.cli_version' must be a version such as 2.1.328 or "
            f"'latest', got {values['cli_version']!r}"
        )
