"""One declaration per stored table: its columns, their checks, and how its rows are built.

A table's rows are built from the records that cross into storage (an `Attempt`, a `Verdict`,
a mapping) by column name, plus the provenance given by the caller; its pandera schema is
derived from the same declaration and checked on every write. Adding a column is one line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pandera.polars as pa
import polars as pl

from pipeline.agents import trajectory
from pipeline.agents.exits import ExitClass
from pipeline.grading.controls import CONTROLS
from pipeline.grading.outcomes import GRADED, Outcome
from pipeline.tasks.model import PRO_FIELDS


@dataclass(frozen=True)
class Column:
    name: str
    dtype: type[pl.DataType] | pl.DataType
    nullable: bool = False  # optional: partitions written before it existed lack it
    unique: bool = False
    checks: tuple = ()


@dataclass(frozen=True)
class Table:
    name: str
    keys: tuple[str, ...]  # partition keys, in lake folder order
    columns: tuple[Column, ...]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def schema(self) -> pa.DataFrameSchema:
        return pa.DataFrameSchema(
            {
                c.name: pa.Column(
                    c.dtype,
                    checks=list(c.checks),
                    nullable=c.nullable,
                    unique=c.unique,
                    required=not c.nullable,
                )
                for c in self.columns
            },
            name=self.name,
        )

    def row(self, *sources: object, **values: object) -> dict:
        """A row from `sources` (records or mappings, read by column name) and explicit `values`."""
        row = {}
        for column in self.columns:
            if column.name in values:
                row[column.name] = values[column.name]
                continue
            for source in sources:
                found = _field(source, column.name)
                if found is not _MISSING:
                    row[column.name] = found
                    break
            else:
                if not column.nullable:
                    raise KeyError(f"{self.name}: no value for column {column.name!r}")
                row[column.name] = None
        return row

    def frame(self, rows: Iterable[Mapping]) -> pl.DataFrame:
        """The rows as a frame of exactly this table's columns and types (not yet validated)."""
        schema = {c.name: c.dtype for c in self.columns}
        return (
            pl.DataFrame([dict(r) for r in rows], schema=schema, orient="row")
            if rows
            else pl.DataFrame(schema=schema)
        )

    def validate(self, frame: pl.DataFrame) -> pl.DataFrame:
        return self.schema.validate(frame)


_MISSING = object()


def _field(source: object, name: str) -> object:
    if isinstance(source, Mapping):
        return source.get(name, _MISSING)
    if dataclasses.is_dataclass(source):
        return getattr(source, name, _MISSING)
    return _MISSING


def _at_least(value: float) -> tuple:
    return (pa.Check.ge(value),)


def _one_of(values: Iterable[str]) -> tuple:
    return (pa.Check.isin([str(v) for v in values]),)


PROVENANCE = (Column("run_id", pl.String), Column("config_hash", pl.String))

TASKS = Table(
    "tasks",
    ("suite",),
    (
        Column("suite", pl.String),
        *(Column(name, pl.String, unique=name == "instance_id") for name in PRO_FIELDS),
        Column("difficulty", pl.String, nullable=True),
    ),
)
SAMPLES = Table(
    "samples",
    ("date",),
    (
        Column("date", pl.Date),
        Column("instance_id", pl.String),
        Column("position", pl.Int64, checks=_at_least(0)),
        Column("sample_seed", pl.Int64),
        *PROVENANCE,
    ),
)
BEHAVIOUR = tuple(  # read from the transcript; null for adapters without one to read (simulated,
    # replay, command), for thinking the CLI hides, and in partitions written before them
    Column(name, pl.Int64, nullable=True, checks=_at_least(0))
    for name in trajectory.COLUMNS
)
ATTEMPTS = Table(
    "attempts",
    ("subject", "date"),
    (
        Column("attempt_id", pl.String, unique=True),
        Column("date", pl.Date),
        Column("subject", pl.String),
        Column("trial", pl.Int64, checks=_at_least(0)),
        Column("instance_id", pl.String),
        Column("started_at", pl.Datetime("us")),
        Column("patch", pl.String),
        Column("cost_usd", pl.Float64, checks=_at_least(0)),
        Column("input_tokens", pl.Int64, checks=_at_least(0)),
        Column("output_tokens", pl.Int64, checks=_at_least(0)),
        Column("cached_tokens", pl.Int64, checks=_at_least(0)),
        Column("turns", pl.Int64, checks=_at_least(0)),
        Column("duration_s", pl.Float64, checks=_at_least(0)),
        Column("exit_class", pl.String, checks=_one_of(ExitClass)),
        Column("agent_version", pl.String),
        Column("agent_sha256", pl.String, nullable=True),
        Column("failure_mode", pl.String),
        Column("transcript", pl.String),
        Column("detail", pl.String),
        Column("tries", pl.Int64, checks=_at_least(0)),
        Column("sample_seed", pl.Int64),
        *PROVENANCE,
        *BEHAVIOUR,
    ),
)
GRADE_PROVENANCE = (  # what a grade was graded against; partitions written before them lack them
    Column("apply_rule", pl.String, nullable=True),
    Column("tampered", pl.Boolean, nullable=True),
    Column("image_digest", pl.String, nullable=True),
    Column("dataset_revision", pl.String, nullable=True),
    Column("run_scripts_revision", pl.String, nullable=True),
)
EVALUATIONS = Table(
    "evaluations",
    ("subject", "date"),
    (
        Column("attempt_id", pl.String, unique=True),
        Column("date", pl.Date),
        Column("subject", pl.String),
        Column("trial", pl.Int64, checks=_at_least(0)),
        Column("instance_id", pl.String),
        Column("outcome", pl.String, checks=_one_of(Outcome)),
        Column("resolved", pl.Boolean),
        Column("apply_step", pl.String),
        Column("f2p_passed", pl.Int64, checks=_at_least(0)),
        Column("f2p_total", pl.Int64, checks=_at_least(0)),
        Column("p2p_passed", pl.Int64, checks=_at_least(0)),
        Column("p2p_total", pl.Int64, checks=_at_least(0)),
        Column("grade_key", pl.String),
        Column("cached", pl.Boolean),
        Column("artifact_dir", pl.String),
        Column("grader_version", pl.String),
        Column("env_fingerprint", pl.String),
        Column("sandbox", pl.String),
        Column("reason", pl.String, nullable=True),
        *PROVENANCE,
        *GRADE_PROVENANCE,
    ),
)
CONTROLS_TABLE = Table(
    "controls",
    ("date",),
    (
        Column("date", pl.Date),
        Column("instance_id", pl.String),
        Column("control", pl.String, checks=_one_of(CONTROLS)),
        Column("outcome", pl.String, checks=_one_of(GRADED)),
        Column("ok", pl.Boolean),
        Column("cached", pl.Boolean),
        Column("artifact_dir", pl.String),
        Column("grader_version", pl.String),
        Column("env_fingerprint", pl.String),
        *PROVENANCE,
        *GRADE_PROVENANCE,
    ),
)
DECISIONS = Table(
    "decisions",
    ("subject", "date"),
    (
        Column("subject", pl.String),
        Column("date", pl.String),
        Column("direction", pl.String, checks=_one_of(("up", "down"))),
        Column("decision", pl.String, checks=_one_of(("confirmed", "cleared", "held"))),
        Column("extra_trials", pl.Int64, checks=_at_least(0)),
        Column("attempts_before", pl.Int64, checks=_at_least(0)),
        Column("attempts_after", pl.Int64, checks=_at_least(0)),
        Column("decided_at", pl.Datetime("us")),
        # the day the alarm was raised (a held alarm is decided on the next day, in that day's row)
        Column("alarm_date", pl.String, nullable=True),
        Column(
            "evidence_z", pl.Float64, nullable=True
        ),  # the z that decided: fresh trials', or the next day's
        # a confirmed shift's attribution when it was alerted (pipeline.stats.attribution)
        Column("attribution", pl.String, nullable=True),
        Column("attribution_reason", pl.String, nullable=True),
    ),
)

TABLES = {t.name: t for t in (TASKS, SAMPLES, ATTEMPTS, EVALUATIONS, CONTROLS_TABLE, DECISIONS)}
