"""Every demo task is well-formed and gradeable: gold resolves, empty and failures do not."""

import ast
from collections import Counter

from pipeline.agents.simulated import does_not_apply, first_hunk, wrong_fix
from pipeline.tasks.model import PRO_FIELDS


def test_suite_shape(suite):
    tasks = suite.tasks()
    assert len(tasks) >= 30
    assert len({t.repo for t in tasks}) >= 4
    labels = Counter(suite.difficulty(t.instance_id) for t in tasks)
    assert labels["easy"] and labels["medium"] and labels["hard"]
    for task in tasks:
        row = task.as_row()
        assert tuple(row) == PRO_FIELDS and all(isinstance(v, str) for v in row.values())
        assert isinstance(ast.literal_eval(task.fail_to_pass), list) and task.f2p
        assert len(task.base_commit) == 40
        assert task.before_repo_set_cmd.splitlines()[-1].startswith("git checkout ")


def test_repositories_are_deterministic(suite, tmp_path):
    from pipeline.tasks.demo import DemoSuite

    again = {t.instance_id: t.base_commit for t in DemoSuite(tmp_path).tasks()}
    assert again == {t.instance_id: t.base_commit for t in suite.tasks()}


def test_gold_resolves_and_empty_does_not(suite, grader):
    tasks = suite.tasks()
    gold = grader.grade_many([(t, t.patch) for t in tasks], workers=2)
    empty = grader.grade_many([(t, "") for t in tasks], workers=2, run_empty=True)
    assert [v.instance_id for v in gold if v.outcome != "resolved"] == []
    assert all(v.apply_step == "git_apply" for v in gold)
    assert [v.instance_id for v in empty if v.resolved] == []
    assert all(v.outcome == "unresolved" and v.p2p_passed == v.p2p_total for v in empty)


def test_simulated_failures_never_resolve(suite, grader):
    tasks = suite.tasks()
    pairs = []
    for task in tasks:
        pairs.append((task, suite.wrong_patch(task.instance_id) or wrong_fix(task.patch)))
        pairs.append((task, does_not_apply(task.patch)))
        if partial := first_hunk(task.patch):
            pairs.append((task, partial))
    verdicts = grader.grade_many(pairs, workers=2)
    assert [v.instance_id for v in verdicts if v.resolved] == []
    stale = [
        v.outcome
        for v, (_, patch) in zip(verdicts, pairs, strict=True)
        if "# stale" in patch or "_hallucinated" in patch
    ]
    assert len(stale) == len(tasks) and set(stale) == {"patch_failed"}


def test_scenario_pass_rates_at_the_bounds_and_beyond(suite, tmp_path):
    import datetime as dt

    import pytest
    import yaml

    from pipeline.agents.simulated import SimulatedAgent

    tasks = suite.tasks()[:6]
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(
        yaml.safe_dump(
            {
                "seed": 1,
                "start_date": "2026-11-01",
                "subjects": {
                    "always": [{"day": 1, "version": "v1", "pass_rate": 1.0}],
                    "never": [{"day": 1, "version": "v1", "pass_rate": 0.0}],
                    "bad": [{"day": 1, "version": "v1", "pass_rate": 1.5}],
                },
            }
        )
    )
    day = dt.date(2026, 11, 5)
    assert {SimulatedAgent("always", scenario, tasks).success_probability(t, day) for t in tasks} == {1.0}
    assert {SimulatedAgent("never", scenario, tasks).success_probability(t, day) for t in tasks} == {0.0}
    with pytest.raises(ValueError, match="subject 'bad', phase 1: pass_rate must be between 0 and 1"):
        SimulatedAgent("bad", scenario, tasks)
