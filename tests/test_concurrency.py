"""A subject's concurrency: set in the config, or sized from the attempt budget (tasks x trials
attempts of `attempt_minutes` within 20 hours) for real agents, 1 for simulated/replayed ones."""

import pytest

from pipeline.config import ConfigError, load_config
from pipeline.config.subjects import sized_concurrency

CODEX = "{name: c, adapter: codex, model: gpt-5, price: {input: 1, output: 1, cached_input: 0}%s}"


def config(tmp_path, subject: str, size: int = 300, trials: int = 5):
    path = tmp_path / "tracking.yaml"
    path.write_text(f"trials: {trials}\nsample: {{size: {size}}}\nsubjects:\n  - {subject}\n")
    return load_config(path).subjects[0]


def test_sized_from_the_budget():
    assert sized_concurrency(300, 5, 5.0) == 7  # 7,500 attempt-minutes in 1,200 minutes: 6.25 -> 7
    assert sized_concurrency(240, 5, 5.0) == 5  # exactly 5: not rounded up to 6
    assert sized_concurrency(40, 3, 5.0) == 1
    assert sized_concurrency(300, 5, 5.0, budget_hours=10) == 13


def test_a_real_agent_defaults_to_the_budgets_concurrency(tmp_path):
    subject = config(tmp_path, CODEX % "")
    assert (subject.concurrency, subject.attempt_minutes, subject.concurrency_from) == (7, 5.0, "budget")
    slow = config(tmp_path, CODEX % ", attempt_minutes: 12, trials: 2")
    assert (slow.concurrency, slow.concurrency_from) == (6, "budget")  # 300 x 2 x 12 / 1200


def test_an_explicit_concurrency_wins(tmp_path):
    subject = config(tmp_path, CODEX % ", concurrency: 2")
    assert (subject.concurrency, subject.concurrency_from) == (2, "config")


def test_instant_adapters_run_one_at_a_time(tmp_path):
    subject = config(tmp_path, "{name: sim-codex, adapter: simulated, scenario: scenario.yaml}")
    assert (subject.concurrency, subject.attempt_minutes, subject.concurrency_from) == (1, None, "instant")


def test_bad_attempt_minutes_is_named(tmp_path):
    with pytest.raises(ConfigError, match="subject c: field 'attempt_minutes'"):
        config(tmp_path, CODEX % ", attempt_minutes: 0")
