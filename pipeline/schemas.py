"""One pandera schema per table, checked whenever a stage writes it."""

from __future__ import annotations

from typing import Optional

import pandera.polars as pa
import polars as pl

from pipeline.agents import EXIT_CLASSES
from pipeline.grading import OUTCOMES


class Provenance(pa.DataFrameModel):
    run_id: str
    config_hash: str


class Tasks(pa.DataFrameModel):
    suite: str
    instance_id: str = pa.Field(unique=True)
    repo: str
    base_commit: str
    difficulty: str = pa.Field(nullable=True)


class Samples(Provenance):
    date: pl.Date
    instance_id: str
    position: int = pa.Field(ge=0)
    sample_seed: int


class Attempts(Provenance):
    attempt_id: str = pa.Field(unique=True)
    date: pl.Date
    subject: str
    trial: int = pa.Field(ge=0)
    instance_id: str
    started_at: pl.Datetime
    patch: str
    cost_usd: float = pa.Field(ge=0)
    input_tokens: int = pa.Field(ge=0)
    output_tokens: int = pa.Field(ge=0)
    cached_tokens: int = pa.Field(ge=0)
    turns: int = pa.Field(ge=0)
    duration_s: float = pa.Field(ge=0)
    exit_class: str = pa.Field(isin=list(EXIT_CLASSES))
    agent_version: str
    agent_sha256: Optional[str] = pa.Field(nullable=True)  # noqa: UP045 - optional: older partitions lack it
    failure_mode: str
    transcript: str
    detail: str
    tries: int = pa.Field(ge=0)
    sample_seed: int


class Evaluations(Provenance):
    attempt_id: str = pa.Field(unique=True)
    date: pl.Date
    subject: str
    trial: int = pa.Field(ge=0)
    instance_id: str
    outcome: str = pa.Field(isin=[*OUTCOMES, "skipped"])
    resolved: bool
    apply_step: str
    f2p_passed: int = pa.Field(ge=0)
    f2p_total: int = pa.Field(ge=0)
    p2p_passed: int = pa.Field(ge=0)
    p2p_total: int = pa.Field(ge=0)
    grade_key: str
    cached: bool
    artifact_dir: str
    grader_version: str
    env_fingerprint: str
    sandbox: str
    reason: Optional[str] = pa.Field(nullable=True)  # noqa: UP045 - optional: older partitions lack it


class Controls(Provenance):
    date: pl.Date
    instance_id: str
    control: str = pa.Field(isin=["gold", "empty"])
    outcome: str = pa.Field(isin=list(OUTCOMES))
    ok: bool
    cached: bool
    artifact_dir: str
    grader_version: str
    env_fingerprint: str


class Decisions(pa.DataFrameModel):
    subject: str
    date: str
    direction: str = pa.Field(isin=["up", "down"])
    decision: str = pa.Field(isin=["confirmed", "cleared"])
    extra_trials: int = pa.Field(ge=0)
    attempts_before: int = pa.Field(ge=0)
    attempts_after: int = pa.Field(ge=0)
    decided_at: pl.Datetime


SCHEMAS: dict[str, type[pa.DataFrameModel]] = {
    "decisions": Decisions,
    "tasks": Tasks,
    "samples": Samples,
    "attempts": Attempts,
    "evaluations": Evaluations,
    "controls": Controls,
}
