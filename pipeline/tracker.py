"""The composition root: config, lake and warehouse, suite, grader and agents for one home.

The daily pipeline (assets, sensors), `candlebench grade`, `attempt`, `backfill` and `check`
all build these through a Tracker, so each reads the configuration, opens the sandbox, binds the
suite to it and builds agents the same way.
"""

from __future__ import annotations

import datetime as dt
from functools import cached_property
from pathlib import Path

from pipeline import clock, faults
from pipeline.agents import Agent, AgentWorld, Attempt, ExitClass, adapter, build_agent, solve_all
from pipeline.agents.ledger import Ledger
from pipeline.config import TrackingConfig, load_config
from pipeline.config.lanes import lanes_of
from pipeline.grading import Grader, Outcome, Verdict
from pipeline.sandbox import Limits, Sandbox, SandboxUnavailable, open_sandbox
from pipeline.stats.attribution import Lane
from pipeline.store import Warehouse
from pipeline.tasks import Task, TaskSource, open_suite
from pipeline.tasks.sampling import panel


class Tracker:
    def __init__(self, home: Path, config: TrackingConfig | None = None) -> None:
        self.home = Path(home)
        self.config = config or load_config()
        self.warehouse = Warehouse(self.home)
        self.lake = self.warehouse.lake

    @cached_property
    def suite(self) -> TaskSource:
        """The built-in demo suite, or the SWE-Bench-Pro rows file the config names."""
        return open_suite(self.config.suite, self.home, self.config.run_scripts)

    @cached_property
    def tasks(self) -> dict[str, Task]:
        return {task.instance_id: task for task in self.suite.tasks()}

    def sample(self, day: dt.date) -> list[Task]:
        """The day's tasks. The default design is a fixed panel, the same every day."""
        del day  # a fixed panel does not depend on the day; rotating designs will
        return panel(list(self.tasks.values()), self.config.sample_size, self.config.sample_seed)

    @cached_property
    def lanes(self) -> dict[str, Lane]:
        """Each subject's vendor, model, CLI and lane (frozen or latest), for the attribution."""
        return lanes_of(self.config.subjects)

    def registry_answers(self) -> dict[str, dict[str, str]]:
        """CLI -> day -> the version npm's `latest` named that day (the CLI cache's record)."""
        from pipeline.agents.cli_cache import CLIS, latest_resolutions

        answers = {}
        for cli in CLIS:
            try:
                answers[cli] = latest_resolutions(cli)
            except (OSError, ValueError):  # an unreadable record costs the column, not the detector
                answers[cli] = {}
        return answers

    def today(self) -> dt.date:
        """Today in the schedule's time zone."""
        return clock.today(self.config.timezone)

    def history_start(self, today: dt.date) -> dt.date:
        return today - dt.timedelta(days=self.config.history_days - 1)

    def agent(self, subject: str) -> Agent:
        today = self.today()
        return build_agent(
            self.config.subject(subject),
            AgentWorld(
                checkout=self.suite.checkout,
                transcripts=self.home / "transcripts",
                image_of=self.suite.image,
                panel=tuple(self.sample(today)),
                wrong_patch=self.suite.wrong_patch,
                label_of=self.suite.difficulty,
                default_start=self.history_start(today),
                sandbox=lambda: self.sandbox,
            ),
        )

    def trusted(self, subject: str) -> bool:
        """Whether a subject's patches may run outside an isolating sandbox (its adapter says)."""
        return adapter(self.config.subject(subject).adapter).trusted_patches

    @cached_property
    def sandbox(self) -> Sandbox:
        return open_sandbox(self.config.sandbox, docker_host=self.config.docker_host)

    @cached_property
    def grader(self) -> Grader:
        try:
            self.suite.bind(self.sandbox, list(self.tasks.values()))
        except SandboxUnavailable as err:
            raise SandboxUnavailable(f"{self.config.path} (sandbox: {self.config.sandbox}): {err}") from err
        limits = Limits(
            timeout_s=self.config.grading_timeout_s,
            memory_mb=self.config.grading_memory_mb,
            tmp_mb=self.config.grading_tmp_mb,
        )
        return Grader(
            self.suite.checkout,
            self.sandbox,
            self.warehouse.artifacts,
            limits,
            allow_untrusted_unsandboxed=self.config.allow_untrusted_patches_without_sandbox,
            runner=self.suite.runner,
            image_of=self.suite.image,
            apply_rule=self.config.apply_rule or self.suite.apply_rule,
            release=getattr(self.suite, "release", None),
        )

    def run_attempts(self, subject: str, day: dt.date, trials: range | None = None) -> list[Attempt]:
        """Every trial of every sampled task, trial by trial, within the subject's daily cost cap.

        `trials` defaults to the subject's daily trials; a confirmation asks for further ones.
        """
        spec = self.config.subject(subject)
        trials = trials if trials is not None else range(spec.trials)
        plan = [(task, trial) for trial in trials for task in self.sample(day)]
        return solve_all(
            self.agent(subject),
            plan,
            day,
            spec.daily_cost_cap_usd,
            spec.concurrency,
            ledger=Ledger(self.home / "ledger"),
            paid=adapter(spec.adapter).paid_work,
        )

    def grade(self, pairs: list[tuple[Task, str]], trusted: bool, **options) -> list[Verdict]:
        return self.grader.grade_many(pairs, workers=self.config.sandbox_workers, trusted=trusted, **options)

    def grade_attempts(self, subject: str, attempts: list[dict]) -> list[Verdict]:
        """A verdict for every stored attempt of a partition; those never launched are `skipped`
        (never graded, never a failure)."""
        launched = [a for a in attempts if a["exit_class"] != ExitClass.SKIPPED]
        graded = self.grade(
            [(self.tasks[a["instance_id"]], a["patch"]) for a in launched], trusted=self.trusted(subject)
        )
        faults.point("graded")
        verdict_of = {a["attempt_id"]: v for a, v in zip(launched, graded, strict=True)}
        return [
            verdict_of.get(a["attempt_id"])
            or self.grader.not_run(
                self.tasks[a["instance_id"]],
                Outcome.SKIPPED,
                f"not launched: {a['detail']}" if a.get("detail") else "not launched",
            )
            for a in attempts
        ]

    def grade_controls(self, day: dt.date) -> tuple[list[Task], list[Verdict], list[Verdict]]:
        """The gold and the empty patch of every task sampled on `day`: graded fresh for today,
        past days reusing the cached verdict for the same environment."""
        tasks = self.sample(day)
        fresh = day >= self.today()
        gold = self.grade([(t, t.patch) for t in tasks], trusted=True, use_cache=not fresh)
        empty = self.grade([(t, "") for t in tasks], trusted=True, run_empty=True, use_cache=not fresh)
        return tasks, gold, empty
