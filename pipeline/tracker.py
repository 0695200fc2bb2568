"""The engine, assembled: config, warehouse, suite, agents and grader for one candlebench home.

Assets, sensors and the command line all go through a Tracker, so each of them reads the
configuration, opens the sandbox and builds agents the same way.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from functools import cached_property
from pathlib import Path

import polars as pl

from pipeline import clock
from pipeline.adapters import build_agent
from pipeline.agents import Agent, Attempt, SimulatedAgent, solve_all
from pipeline.config import TrackingConfig, load_config
from pipeline.demo_suite import DemoSuite
from pipeline.grading import Grader, Verdict
from pipeline.interop import RowSuite
from pipeline.sampling import panel
from pipeline.sandbox import Limits, SandboxUnavailable, open_sandbox
from pipeline.stats.design import DEFAULT_DESIGN, MonitorDesign
from pipeline.tasks import Task
from pipeline.warehouse import Warehouse


class Tracker:
    def __init__(self, home: Path, config: TrackingConfig | None = None) -> None:
        self.home = Path(home)
        self.config = config or load_config()
        self.warehouse = Warehouse(self.home)

    @cached_property
    def suite(self) -> DemoSuite | RowSuite:
        """The built-in demo suite, or the SWE-Bench-Pro rows file the config names."""
        if self.config.suite == "demo":
            return DemoSuite(self.home / "repos")
        return RowSuite(Path(self.config.suite), self.home, self.config.run_scripts)

    @cached_property
    def tasks(self) -> dict[str, Task]:
        return {task.instance_id: task for task in self.suite.tasks()}

    def sample(self, day: dt.date) -> list[Task]:
        """The day's tasks. The default design is a fixed panel, the same every day."""
        del day  # a fixed panel does not depend on the day; rotating designs will
        return panel(list(self.tasks.values()), self.config.sample_size, self.config.sample_seed)

    def today(self) -> dt.date:
        """Today in the schedule's time zone."""
        return clock.today(self.config.timezone)

    def history_start(self, today: dt.date) -> dt.date:
        return today - dt.timedelta(days=self.config.history_days - 1)

    def agent(self, subject: str) -> Agent:
        spec = self.config.subject(subject)
        if spec.adapter == "simulated":
            return SimulatedAgent(
                subject,
                spec.scenario,
                self.sample(self.today()),
                wrong_patch=self.suite.wrong_patch,
                label_of=self.suite.difficulty,
                default_start=self.history_start(self.today()),
            )
        image_of = self.suite.runner.image if isinstance(self.suite, RowSuite) else None
        return build_agent(spec, self.suite.checkout, self.home / "transcripts", image_of)

    def trusted(self, subject: str) -> bool:
        """Simulated agents only emit gold or derived patches; every other adapter's are untrusted."""
        return self.config.subject(subject).adapter == "simulated"

    @cached_property
    def grader(self) -> Grader:
        sandbox = open_sandbox(self.config.sandbox)
        runner = None
        if isinstance(self.suite, RowSuite):
            runner = self.suite.runner
            try:
                self.suite.bind(sandbox, list(self.tasks.values()))
            except SandboxUnavailable as err:
                raise SandboxUnavailable(f"{self.config.path} (sandbox: {self.config.sandbox}): {err}") \
                    from err
        limits = Limits(timeout_s=self.config.grading_timeout_s, memory_mb=self.config.grading_memory_mb,
                        tmp_mb=self.config.grading_tmp_mb)
        return Grader(
            self.suite.checkout,
            sandbox,
            self.warehouse.artifacts,
            limits,
            allow_untrusted_unsandboxed=self.config.allow_untrusted_patches_without_sandbox,
            runner=runner,
        )

    def run_attempts(self, subject: str, day: dt.date, trials: range | None = None) -> list[Attempt]:
        """Every trial of every sampled task, trial by trial, within the subject's daily cost cap.

        `trials` defaults to the subject's daily trials; a confirmation asks for further ones.
        """
        spec = self.config.subject(subject)
        trials = trials if trials is not None else range(spec.trials)
        plan = [(task, trial) for trial in trials for task in self.sample(day)]
        return solve_all(self.agent(subject), plan, day, spec.daily_cost_cap_usd, spec.concurrency)

    def grade(self, pairs: list[tuple[Task, str]], trusted: bool, **options) -> list[Verdict]:
        return self.grader.grade_many(
            pairs, workers=self.config.grading_workers, trusted=trusted, **options
        )


def attempt_id(subject: str, day: dt.date, trial: int, instance_id: str) -> str:
    return hashlib.sha256(f"{subject}|{day}|{trial}|{instance_id}".encode()).hexdigest()[:20]


def attempts_frame(attempts: list[Attempt], run_id: str, config_hash: str, seed: int) -> pl.DataFrame:
    rows = [
        {
            "attempt_id": attempt_id(a.subject, a.date, a.trial, a.instance_id),
            "date": a.date,
            "subject": a.subject,
            "trial": a.trial,
            "instance_id": a.instance_id,
            "started_at": a.started_at,
            "patch": a.patch,
            "cost_usd": a.cost_usd,
            "input_tokens": a.input_tokens,
            "output_tokens": a.output_tokens,
            "cached_tokens": a.cached_tokens,
            "turns": a.turns,
            "duration_s": a.duration_s,
            "exit_class": a.exit_class,
            "agent_version": a.agent_version,
            "agent_sha256": a.agent_sha256,
            "failure_mode": a.failure_mode,
            "transcript": a.transcript,
            "detail": a.detail,
            "tries": a.tries,
            "sample_seed": seed,
            "run_id": run_id,
            "config_hash": config_hash,
        }
        for a in attempts
    ]
    return pl.DataFrame(rows, schema_overrides={"started_at": pl.Datetime("us")})


COUNTS_SQL = """
WITH subjects AS (SELECT unnest($subjects) AS subject, unnest(range(len($subjects)))::INTEGER AS code),
     tasks AS (SELECT unnest($tasks) AS instance_id, unnest(range(len($tasks)))::INTEGER AS code)
SELECT s.code AS subject, e.date, t.code AS task,
       count(*) FILTER (WHERE e.resolved)::SMALLINT AS successes, count(*)::SMALLINT AS trials
FROM evaluations e
JOIN subjects s ON s.subject = e.subject
JOIN tasks t ON t.instance_id = e.instance_id
LEFT JOIN (SELECT DISTINCT date, instance_id FROM controls WHERE NOT ok) b
       ON b.date = e.date AND b.instance_id = e.instance_id
WHERE b.instance_id IS NULL AND e.outcome NOT IN ('harness_error', 'skipped')
  AND e.subject BETWEEN $first AND $last
GROUP BY ALL
"""
DETECT_MEMORY = "256MB"  # DuckDB's buffer pool while detect() reads the lake; spills beyond it
NAMES_SQL = "SELECT {column} AS name, count(*) AS rows FROM evaluations WHERE {column} NOTNULL GROUP BY ALL"
CONTROLS_SQL = "SELECT date::VARCHAR AS date, instance_id AS task, ok FROM controls"
RELEASES_SQL = """
SELECT subject, agent_version, min(date)::VARCHAR AS first_seen
FROM attempts GROUP BY ALL ORDER BY subject, first_seen
"""


def releases(connection) -> pl.DataFrame:
    """Version changes per subject, from the versions its attempts recorded."""
    seen = connection.sql(RELEASES_SQL).pl()
    rows = []
    for (name,), group in seen.group_by(["subject"], maintain_order=True):
        versions = group.sort("first_seen").to_dicts()
        for before, after in zip(versions, versions[1:], strict=False):
            rows.append({"subject": name, "old_version": before["agent_version"],
                         "new_version": after["agent_version"], "first_seen": after["first_seen"]})
    return pl.DataFrame(rows, schema={"subject": pl.String, "old_version": pl.String,
                                      "new_version": pl.String, "first_seen": pl.String})


def graded_counts(connection, batch_trials: int = 4_000_000) -> tuple[pl.DataFrame, dict]:
    """Successes and trials per subject, date and task, subjects and tasks as integer codes into
    the returned name lists. Aggregated a batch of subjects at a time (about `batch_trials`
    graded trials each) and fetched as integers, so memory stays bounded at any warehouse size."""
    seen = {c: connection.sql(NAMES_SQL.format(column=c)).pl().sort("name")
            for c in ("subject", "instance_id")}
    subjects, tasks = seen["subject"]["name"].to_list(), seen["instance_id"]["name"].to_list()
    parts, batch, size = [], [], 0
    for name, rows in seen["subject"].iter_rows():
        batch.append(name)
        size += rows
        if size >= batch_trials or name == subjects[-1]:
            params = {"subjects": subjects, "tasks": tasks, "first": batch[0], "last": batch[-1]}
            reader = connection.sql(COUNTS_SQL, params=params).to_arrow_reader(1 << 20)
            parts += [pl.from_arrow(b) for b in reader]
            batch, size = [], 0
    schema = {"subject": pl.Int32, "date": pl.Date, "task": pl.Int32, "successes": pl.Int16,
              "trials": pl.Int16}
    counts = pl.concat(parts, rechunk=False) if parts else pl.DataFrame(schema=schema)
    return counts, {"subject": subjects, "task": tasks}


def detect(connection, design: MonitorDesign = DEFAULT_DESIGN) -> dict[str, pl.DataFrame]:
    """Changepoints, online alarms, verdicts and harness-suspect days over every subject's history.

    One table each, ready for DuckDB: `changepoints`, `alarms`, `monitor` (the daily CUSUM path,
    with each day's warning and the extra trials the next day should take), `verdicts`,
    `harness_suspects`, and the `releases` they were read against.
    """
    from pipeline.stats.tables import detection_tables  # scipy loads only when detection runs

    known = releases(connection)
    by_subject = {
        name: [(r["first_seen"], r["old_version"], r["new_version"]) for r in group.iter_rows(named=True)]
        for (name,), group in known.group_by(["subject"], maintain_order=True)
    }
    controls = connection.sql(CONTROLS_SQL).pl()
    ((limit,),) = connection.sql("SELECT current_setting('memory_limit')").fetchall()
    connection.execute(f"SET memory_limit = '{DETECT_MEMORY}'")  # a cache of the whole lake is no help here
    try:
        counts, labels = graded_counts(connection)
    finally:
        connection.execute(f"SET memory_limit = '{limit}'")
    tables = detection_tables(counts, controls, releases=by_subject, design=design, labels=labels)
    return {**tables, "releases": known}
