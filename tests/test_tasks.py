import json

import pytest

from pipeline.tasks import Task, TaskFormatError
from pipeline.tasks.model import PRO_FIELDS, parse_list
from pipeline.tasks.rows import load_rows


def row(**overrides):
    base = {name: "" for name in PRO_FIELDS}
    base.update(instance_id="x__y-1", repo="o/r", fail_to_pass="['t::a']", pass_to_pass="[]")
    base.update(overrides)
    return base


def test_row_round_trips_and_parses_lists():
    task = Task.from_row(row(selected_test_files_to_run="['tests/a.py', 'tests/b.py']"))
    assert task.f2p == ["t::a"]
    assert task.test_files == ["tests/a.py", "tests/b.py"]
    assert Task.from_row(task.as_row()) == task


def test_missing_field_is_named():
    broken = row()
    del broken["base_commit"]
    with pytest.raises(TaskFormatError, match="base_commit"):
        Task.from_row(broken, "rows.jsonl:3")


def test_non_string_field_is_named():
    with pytest.raises(TaskFormatError, match="'patch' must be a string"):
        Task.from_row(row(patch=42))


def test_list_literals_are_never_evaluated():
    with pytest.raises(TaskFormatError, match="fail_to_pass"):
        Task.from_row(row(fail_to_pass="__import__('os').system('true')"))
    with pytest.raises(TaskFormatError):
        parse_list("[1, 2]", "where")


def test_load_rows_rejects_duplicates(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(json.dumps(row()) for _ in range(2)))
    with pytest.raises(TaskFormatError, match="duplicate"):
        load_rows(path)


def test_prompt_follows_pro():
    task = Task.from_row(row(problem_statement="Bug", requirements="- do it", interface="f()"))
    assert task.prompt() == "Bug\n\nRequirements:\n- do it\n\nInterface:\nf()\n"
