"""Paid agent work runs once per attempt, whatever re-runs the step: the ledger."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import signal
import threading
from pathlib import Path

import pytest
import yaml

from pipeline.agents import AgentWorld, build_agent, solve_all
from pipeline.agents.ledger import Ledger
from pipeline.agents.model import Attempt, now
from pipeline.config import load_config

DAY = dt.date(2026, 11, 20)


class CountingAgent:
    """An agent that records every call: what a vendor would bill."""

    def __init__(self, subject: str = "paid", gate: threading.Event | None = None) -> None:
        self.subject, self.calls, self.gate = subject, [], gate
        self.started = threading.Event()

    def version(self, on=None) -> str:
        return "counting/1"

    def solve(self, task, day, trial, folder=None) -> Attempt:
        self.calls.append((task.instance_id, trial))
        self.started.set()
        if self.gate is not None:
            assert self.gate.wait(60), "the test never opened the gate"
        return Attempt(
            self.subject,
            task.instance_id,
            day,
            trial,
            now(),
            f"patch {trial}",
            0.25,
            10,
            5,
            0,
            1,
            0.1,
            "submitted",
            self.version(),
            "",
            "",
        )


def plan(suite, trials: int = 2):
    return [(task, trial) for trial in range(trials) for task in suite.tasks()[:3]]


def test_a_rerun_of_a_partition_pays_nothing_and_returns_the_same_attempts(suite, tmp_path):
    agent, ledger = CountingAgent(), Ledger(tmp_path / "ledger")
    first = solve_all(agent, plan(suite), DAY, ledger=ledger, workers=2)
    again = solve_all(agent, plan(suite), DAY, ledger=ledger, workers=2)  # a run retry, a re-execution
    assert len(agent.calls) == 6 and sorted(agent.calls) == sorted(set(agent.calls))
    assert [a.record() for a in again] == [a.record() for a in first]
    extra = solve_all(agent, plan(suite, trials=3)[6:], DAY, ledger=ledger)  # confirmation trials: new work
    assert len(agent.calls) == 9 and {a.trial for a in extra} == {2}


def test_a_cost_cap_counts_what_recorded_attempts_already_cost(suite, tmp_path):
    agent, ledger = CountingAgent(), Ledger(tmp_path / "ledger")
    solve_all(agent, plan(suite)[:2], DAY, ledger=ledger)
    attempts = solve_all(agent, plan(suite), DAY, daily_cost_cap_usd=0.5, ledger=ledger)
    assert len(agent.calls) == 2  # $0.50 was spent by the recorded two: nothing new starts
    assert [a.exit_class for a in attempts].count("skipped") == 4


def test_two_runs_racing_for_one_attempt_run_the_agent_once(suite, tmp_path):
    gate = threading.Event()
    agent, ledger = CountingAgent(gate=gate), Ledger(tmp_path / "ledger")
    task = suite.tasks()[0]
    results = []

    def run():
        results.append(
            ledger.solve("paid", task, DAY, 0, agent.version(), True, lambda: agent.solve(task, DAY, 0))
        )

    racers = [threading.Thread(target=run) for _ in range(2)]
    for racer in racers:
        racer.start()
    assert agent.started.wait(60)  # one of them is inside the agent; the other waits on the claim
    gate.set()
    for racer in racers:
        racer.join(60)
    assert len(agent.calls) == 1 and len(results) == 2 and results[0] == results[1]


def _die_during_the_attempt(root: str, instance_id: str) -> None:
    task = type("T", (), {"instance_id": instance_id})()
    Ledger(Path(root)).solve(
        "paid", task, DAY, 0, "counting/1", True, lambda: os.kill(os.getpid(), signal.SIGKILL)
    )  # kill -9 while the vendor bills


def test_an_attempt_whose_run_was_killed_is_not_paid_again_but_a_free_one_is_rerun(suite, tmp_path):
    task = suite.tasks()[0]
    child = multiprocessing.get_context("fork").Process(
        target=_die_during_the_attempt, args=(str(tmp_path / "ledger"), task.instance_id)
    )
    child.start()
    child.join(60)
    assert child.exitcode == -signal.SIGKILL
    agent, ledger = CountingAgent(), Ledger(tmp_path / "ledger")
    paid = ledger.solve("paid", task, DAY, 0, "counting/1", True, lambda: agent.solve(task, DAY, 0))
    assert agent.calls == [] and paid.exit_class == "skipped"
    assert (
        paid.detail.startswith("interrupted: the run that started this attempt died") and "pid" in paid.detail
    )
    assert ledger.solve("paid", task, DAY, 0, "counting/1", True, lambda: agent.solve(task, DAY, 0)) == paid
    child = multiprocessing.get_context("fork").Process(
        target=_die_during_the_attempt, args=(str(tmp_path / "free"), task.instance_id)
    )
    child.start()
    child.join(60)
    free = Ledger(tmp_path / "free").solve(
        "paid", task, DAY, 0, "counting/1", False, lambda: agent.solve(task, DAY, 0)
    )
    assert agent.calls == [(task.instance_id, 0)] and free.exit_class == "submitted"


def test_a_new_agent_version_is_new_work(suite, tmp_path):
    agent, ledger = CountingAgent(), Ledger(tmp_path / "ledger")
    task = suite.tasks()[0]
    ledger.solve("paid", task, DAY, 0, "v1", True, lambda: agent.solve(task, DAY, 0))
    ledger.solve("paid", task, DAY, 0, "v2", True, lambda: agent.solve(task, DAY, 0))
    assert len(agent.calls) == 2 and len(ledger.recorded("paid", DAY)) == 2


def test_a_real_cli_adapter_runs_once_per_attempt_across_reruns(suite, tmp_path):
    """The command adapter (a process the vendor would bill) through solve_all with the ledger,
    as Tracker.run_attempts calls it: its command leaves one line per real run."""
    bills = tmp_path / "bills.txt"
    config = tmp_path / "tracking.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "trials": 1,
                "subjects": [
                    {
                        "name": "cmd",
                        "adapter": "command",
                        "settings": {"template": f"bash -c 'echo billed >> {bills}' {{prompt}}"},
                    }
                ],
            }
        )
    )
    (spec,) = load_config(config).subjects
    agent = build_agent(spec, AgentWorld(suite.checkout, tmp_path / "transcripts"))
    ledger = Ledger(tmp_path / "ledger")
    from pipeline.agents import adapter

    paid = adapter(spec.adapter).paid_work
    for _ in range(2):
        attempts = solve_all(agent, plan(suite, trials=1), DAY, ledger=ledger, paid=paid)
    assert paid and [a.exit_class for a in attempts] == ["submitted"] * 3
    assert bills.read_text().splitlines() == ["billed"] * 3


def test_a_free_agent_runs_again_on_a_rerun(suite, tmp_path):
    """Replayed predictions may arrive late: `--redo` must see them, and rerunning costs nothing."""
    agent, ledger = CountingAgent(subject="free"), Ledger(tmp_path / "ledger")
    task = suite.tasks()[0]
    for _ in range(2):
        ledger.solve("free", task, DAY, 0, "v1", False, lambda: agent.solve(task, DAY, 0))
    assert len(agent.calls) == 2


def test_an_agent_that_could_not_start_may_run_later(suite, tmp_path):
    """No image, no Docker: nothing ran and nothing was paid, so the claim is released."""
    from pipeline.agents.process import AgentUnavailable

    task, agent, ledger = suite.tasks()[0], CountingAgent(), Ledger(tmp_path / "ledger")

    def cannot_start():
        raise AgentUnavailable("the agent container cannot start: image not found")

    with pytest.raises(AgentUnavailable):
        ledger.solve("paid", task, DAY, 0, "counting/1", True, cannot_start)
    again = ledger.solve("paid", task, DAY, 0, "counting/1", True, lambda: agent.solve(task, DAY, 0))
    assert agent.calls == [(task.instance_id, 0)] and again.exit_class == "submitted"
