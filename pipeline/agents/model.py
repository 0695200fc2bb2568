"""The agent protocol and its record: an `Agent` solves one task and returns an `Attempt`;
`solve_all` runs a day's plan within the subject's cost cap."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pipeline.agents.exits import ExitClass
from pipeline.tasks.model import Task

if TYPE_CHECKING:
    from pipeline.agents.ledger import Ledger


@dataclass(frozen=True)
class Attempt:
    subject: str
    instance_id: str
    date: dt.date
    trial: int
    started_at: dt.datetime
    patch: str
    cost_usd: float
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    turns: int
    duration_s: float
    exit_class: str
    agent_version: str
    transcript: str
    failure_mode: str  # simulated only: which patch the scenario drew ("" for real agents)
    detail: str = ""  # why an attempt ended as it did, e.g. the API's error message
    tries: int = 1  # runs it took: retries after transient API errors add to it
    agent_sha256: str = ""  # sha256 of the agent's executable ("" when none ran: simulated, replay, API)
    # behaviour read from the transcript (`trajectory`); None where the adapter keeps none to read
    tool_calls: int | None = None
    shell_commands: int | None = None
    test_runs: int | None = None
    edits: int | None = None
    files_read_before_first_edit: int | None = None
    thinking_chars: int | None = None  # also None when the CLI does not show the thinking

    def record(self) -> dict:
        """The attempt as plain JSON-ready values."""
        values = asdict(self)
        values["date"] = self.date.isoformat()
        values["started_at"] = self.started_at.isoformat()
        return values


class Agent(Protocol):
    """Solves one task; `version` changes whenever the agent or its model changes.

    `solve` runs one attempt at the task's base state within the subject's budget. With
    `folder`, the attempt's workspace, transcript and patch are kept there.
    """

    subject: str

    def version(self, on: dt.date | None = None) -> str: ...

    def solve(self, task: Task, day: dt.date, trial: int, folder: Path | None = None) -> Attempt: ...


def now() -> dt.datetime:
    """UTC wall time, naive like every timestamp in the lake."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def skipped(subject: str, task: Task, day: dt.date, trial: int, version: str, detail: str) -> Attempt:
    """An attempt that was not launched: recorded, never graded, never counted as a failure."""
    return Attempt(
        subject=subject,
        instance_id=task.instance_id,
        date=day,
        trial=trial,
        started_at=now(),
        patch="",
        cost_usd=0.0,
        input_tokens=0,
        output_tokens=0,
        cached_tokens=0,
        turns=0,
        duration_s=0.0,
        exit_class=ExitClass.SKIPPED,
        agent_version=version,
        transcript="",
        failure_mode="",
        detail=detail,
        tries=0,
    )


def solve_all(
    agent: Agent,
    plan: list[tuple[Task, int]],
    day: dt.date,
    daily_cost_cap_usd: float | None = None,
    workers: int = 1,
    ledger: Ledger | None = None,
    paid: bool = True,
) -> list[Attempt]:
    """Solve each (task, trial) of the day, `workers` at a time, in the plan's order.

    Once the attempts so far have cost `daily_cost_cap_usd`, no new attempt starts: the rest are
    recorded as skipped. Attempts already running finish, so the cap can be passed by at most
    `workers` attempts. With a `ledger`, an attempt already recorded (or run by another process)
    is not run again (see `ledger`); `paid` says whether an interrupted one may be.
    """
    lock = threading.Lock()
    spent = [0.0]
    version = agent.version(day)

    def one(task: Task, trial: int) -> Attempt:
        with lock:
            so_far = spent[0]
        if daily_cost_cap_usd is not None and so_far >= daily_cost_cap_usd:
            return skipped(
                agent.subject,
                task,
                day,
                trial,
                version,
                f"daily cost cap ${daily_cost_cap_usd:g} reached (spent ${so_far:.2f})",
            )
        if ledger is None:
            attempt = agent.solve(task, day, trial)
        else:
            attempt = ledger.solve(
                agent.subject, task, day, trial, version, paid, lambda: agent.solve(task, day, trial)
            )
        with lock:
            spent[0] += attempt.cost_usd
        return attempt

    if workers <= 1:
        return [one(task, trial) for task, trial in plan]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda item: one(*item), plan))
