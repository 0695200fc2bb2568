"""The rows each stage stores, built from the records that cross into storage by the tables'
declarations (`tables`), with the provenance every row carries (run id, config hash)."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence

import polars as pl

from pipeline.agents.model import Attempt
from pipeline.grading.artifacts import Verdict
from pipeline.grading.controls import control_holds
from pipeline.store.tables import ATTEMPTS, CONTROLS_TABLE, DECISIONS, EVALUATIONS, SAMPLES, TASKS
from pipeline.tasks.model import Task


def attempt_id(subject: str, day: dt.date, trial: int, instance_id: str) -> str:
    return hashlib.sha256(f"{subject}|{day}|{trial}|{instance_id}".encode()).hexdigest()[:20]


def task_frame(tasks: Iterable[Task], suite: str, difficulty) -> pl.DataFrame:
    return TASKS.frame(
        [TASKS.row(t.as_row(), suite=suite, difficulty=difficulty(t.instance_id)) for t in tasks]
    )


def sample_frame(
    day: dt.date, tasks: Sequence[Task], seed: int, run_id: str, config_hash: str
) -> pl.DataFrame:
    return SAMPLES.frame(
        [
            SAMPLES.row(
                date=day,
                instance_id=t.instance_id,
                position=i,
                sample_seed=seed,
                run_id=run_id,
                config_hash=config_hash,
            )
            for i, t in enumerate(tasks)
        ]
    )


def attempts_frame(attempts: Iterable[Attempt], run_id: str, config_hash: str, seed: int) -> pl.DataFrame:
    return ATTEMPTS.frame(
        [
            ATTEMPTS.row(
                a,
                attempt_id=attempt_id(a.subject, a.date, a.trial, a.instance_id),
                sample_seed=seed,
                run_id=run_id,
                config_hash=config_hash,
            )
            for a in attempts
        ]
    )


def evaluations_frame(
    attempts: Iterable[dict], verdicts: Iterable[Verdict], sandbox: str, run_id: str
) -> pl.DataFrame:
    """One row per stored attempt (a row of the attempts table) and the verdict it got."""
    return EVALUATIONS.frame(
        [
            EVALUATIONS.row(
                verdict, attempt, sandbox=sandbox, run_id=run_id, instance_id=attempt["instance_id"]
            )
            for attempt, verdict in zip(attempts, verdicts, strict=True)
        ]
    )


def controls_frame(
    day: dt.date,
    tasks: Sequence[Task],
    gold: Sequence[Verdict],
    empty: Sequence[Verdict],
    run_id: str,
    config_hash: str,
) -> tuple[pl.DataFrame, int]:
    """The day's harness controls, and how many of them broke."""
    rows = [
        CONTROLS_TABLE.row(
            v,
            date=day,
            instance_id=task.instance_id,
            control=control,
            ok=control_holds(control, v),
            run_id=run_id,
            config_hash=config_hash,
        )
        for control, verdicts in (("gold", gold), ("empty", empty))
        for task, v in zip(tasks, verdicts, strict=True)
    ]
    return CONTROLS_TABLE.frame(rows), sum(not r["ok"] for r in rows)


def decision_frame(**values: object) -> pl.DataFrame:
    return DECISIONS.frame([DECISIONS.row(**values)])
