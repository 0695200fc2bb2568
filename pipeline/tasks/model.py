"""Tasks in SWE-Bench-Pro's row shape: 16 string fields, list fields as Python literals."""

from __future__ import annotations

import ast
import hashlib
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pipeline.grading.runners import TestRunner
    from pipeline.sandbox import Sandbox

PRO_FIELDS = (
    "repo",
    "instance_id",
    "base_commit",
    "patch",
    "test_patch",
    "problem_statement",
    "requirements",
    "interface",
    "repo_language",
    "fail_to_pass",
    "pass_to_pass",
    "issue_specificity",
    "issue_categories",
    "before_repo_set_cmd",
    "selected_test_files_to_run",
    "dockerhub_tag",
)
LIST_FIELDS = (
    "fail_to_pass",
    "pass_to_pass",
    "issue_specificity",
    "issue_categories",
    "selected_test_files_to_run",
)


class TaskFormatError(ValueError):
    """A task row is missing a field or holds a value of the wrong shape."""


@dataclass(frozen=True)
class Task:
    """One SWE-Bench-Pro row. Every field is a string, exactly as the dataset stores it."""

    repo: str
    instance_id: str
    base_commit: str
    patch: str
    test_patch: str
    problem_statement: str
    requirements: str
    interface: str
    repo_language: str
    fail_to_pass: str
    pass_to_pass: str
    issue_specificity: str
    issue_categories: str
    before_repo_set_cmd: str
    selected_test_files_to_run: str
    dockerhub_tag: str

    @classmethod
    def from_row(cls, row: dict, source: str = "row") -> Task:
        missing = [name for name in PRO_FIELDS if name not in row]
        if missing:
            raise TaskFormatError(f"{source}: missing field(s) {', '.join(missing)}")
        values = {}
        for name in PRO_FIELDS:
            value = row[name]
            if value is None:
                value = ""
            if not isinstance(value, str):
                raise TaskFormatError(
                    f"{source} ({row.get('instance_id', '?')}): field {name!r} must be a string, "
                    f"got {type(value).__name__}"
                )
            values[name] = value
        task = cls(**values)
        for name in LIST_FIELDS:
            parse_list(getattr(task, name), f"{source} ({task.instance_id}) field {name!r}")
        return task

    def as_row(self) -> dict[str, str]:
        return asdict(self)

    @property
    def revision(self) -> str:
        """Digest of the row's 16 fields: which version of the dataset's row was graded."""
        return hashlib.sha256(json.dumps(self.as_row(), sort_keys=True).encode()).hexdigest()[:16]

    @property
    def f2p(self) -> list[str]:
        return parse_list(self.fail_to_pass, f"{self.instance_id}.fail_to_pass")

    @property
    def p2p(self) -> list[str]:
        return parse_list(self.pass_to_pass, f"{self.instance_id}.pass_to_pass")

    @property
    def test_files(self) -> list[str]:
        return parse_list(self.selected_test_files_to_run, f"{self.instance_id}.selected_tests")

    def prompt(self) -> str:
        """The agent prompt, built as SWE-Bench-Pro builds it."""
        parts = [self.problem_statement.strip()]
        if self.requirements.strip():
            parts.append("Requirements:\n" + self.requirements.strip())
        if self.interface.strip():
            parts.append("Interface:\n" + self.interface.strip())
        return "\n\n".join(parts) + "\n"


def parse_list(text: str, where: str) -> list[str]:
    """Parse a Python-literal list of strings safely (never eval)."""
    if text.strip() == "":
        return []
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError) as err:
        raise TaskFormatError(f"{where}: not a Python list literal: {text[:80]!r}") from err
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise TaskFormatError(f"{where}: expected a list of strings, got {text[:80]!r}")
    return list(value)


class TaskSource(Protocol):
    """A suite: its tasks, where their repositories come from, how their tests run, and which
    sandboxes can run them. The tracker, `candlebench grade`, `attempt` and `check` all build
    their grader and agents from one of these."""

    name: str
    runner: TestRunner  # how the graded tests run in the sandbox and are read outside it
    apply_rule: str  # how patches are applied: "git_apply" (Pro's) or "lenient" (SWE-bench's chain)

    def tasks(self) -> list[Task]: ...

    def checkout(self, task: Task, dest: Path) -> None:
        """Materialise the task's repository at its base commit in `dest` (a git work tree)."""
        ...

    def image(self, task: Task) -> str | None:
        """The task's own image (its toolchain), or None for the sandbox's default."""
        ...

    def bind(self, sandbox: Sandbox, tasks: list[Task]) -> None:
        """Refuse, naming a task and why, when `sandbox` cannot run these tasks."""
        ...

    def difficulty(self, instance_id: str) -> str: ...

    def wrong_patch(self, instance_id: str) -> str:
        """A plausible wrong fix (for the simulated agent), or "" when the suite has none."""
        ...


assert tuple(f.name for f in fields(Task)) == PRO_FIELDS
