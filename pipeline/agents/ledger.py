"""Paid work runs once: every attempt is claimed before its agent starts and recorded when it ends.

Dagster may run one partition's step twice: a run retry after a crash, a re-execution, a
schedule tick submitted again under load, two runs racing. The guard sits where the money is
spent, not in the orchestration: an attempt is keyed by subject, day, task, trial and the
agent's version, and

- a recorded attempt of a paid agent is returned as it was recorded: the agent is not asked
  again (a free one, simulated or replay, runs again: `--redo` after late predictions must see them);
- an attempt another process is running now (its claim is locked) is waited for, then returned;
- an attempt whose claim exists but whose run died before recording it (kill -9, OOM, reboot)
  is not re-run for a paid agent: it comes back `skipped` (never graded, never counted) with the
  reason, because the vendor may already have billed it. A free agent (simulated, replay) runs
  it again, since repeating it costs nothing and gives the same answer.

A new agent version is a new key: the version sensor's re-run of today is new work on purpose.
Files live under `<home>/ledger/<subject>/<day>/`: `<key>.json` (the attempt, written to a
temporary name and renamed) and `<key>.claim` (who started it, locked while it runs).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

from pipeline import faults
from pipeline.agents.exits import ExitClass
from pipeline.agents.model import Attempt, skipped
from pipeline.agents.process import AgentUnavailable
from pipeline.tasks.model import Task


class Ledger:
    """The attempts of one home, claimed and recorded one file each."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def solve(
        self,
        subject: str,
        task: Task,
        day: dt.date,
        trial: int,
        version: str,
        paid: bool,
        run: Callable[[], Attempt],
    ) -> Attempt:
        """The attempt for this key: the recorded one, else `run()`'s, recorded before it returns."""
        record, claim = self._paths(subject, task.instance_id, day, trial, version)
        with self._locked(claim) as claimed_before:
            if record.exists() and paid:
                return load(record)
            if claimed_before and paid:
                attempt = skipped(
                    subject,
                    task,
                    day,
                    trial,
                    version,
                    (
                        f"interrupted: the run that started this attempt died before recording it "
                        f"({claim.read_text().strip()}); not run again, because a paid attempt runs once"
                    ),
                )
            else:
                claim.write_text(
                    f"started {dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%SZ} by pid {os.getpid()} "
                    f"on {socket.gethostname()}\n"
                )
                faults.point("attempt")
                try:
                    attempt = run()
                except AgentUnavailable:  # it could not start: nothing ran, so it may run later
                    claim.unlink(missing_ok=True)
                    raise
            _write(record, attempt)
            return attempt

    def recorded(self, subject: str, day: dt.date) -> list[Attempt]:
        """Every attempt recorded for a subject's day (any version), in file order."""
        return [load(path) for path in sorted((self.root / subject / day.isoformat()).glob("*.json"))]

    def _paths(
        self, subject: str, instance_id: str, day: dt.date, trial: int, version: str
    ) -> tuple[Path, Path]:
        folder = self.root / subject / day.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256(f"{instance_id}\0{trial}\0{version}".encode()).hexdigest()[:24]
        return folder / f"{name}.json", folder / f"{name}.claim"

    @staticmethod
    @contextlib.contextmanager
    def _locked(claim: Path) -> Iterator[bool]:
        """Hold the claim's lock (waiting while another process runs the attempt); say whether a
        claim was already there, i.e. an earlier run started this attempt."""
        with claim.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield claim.stat().st_size > 0
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def load(path: Path) -> Attempt:
    values = json.loads(path.read_text())
    values["date"] = dt.date.fromisoformat(values["date"])
    values["started_at"] = dt.datetime.fromisoformat(values["started_at"])
    values["exit_class"] = ExitClass(values["exit_class"])
    return Attempt(**values)


def _write(path: Path, attempt: Attempt) -> None:
    scratch = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    scratch.write_text(json.dumps(attempt.record()))
    os.replace(scratch, path)  # readers see no record or a whole one
