"""Plays: diffs as edits, a script per task, and the turns a script becomes for one API."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from pipeline.agents.scripted_model.script import SCRIPTS, Script, ScriptError, Step, Usage, load_script
from pipeline.tasks.model import Task


@dataclass(frozen=True)
class Hunk:
    lines: tuple[str, ...]  # each with its ' ', '-' or '+' prefix and no newline
    old_eof: bool = False  # "\ No newline at end of file" after the old side's last line
    new_eof: bool = False

    def side(self, keep: str) -> str:
        """The old (keep='-') or new (keep='+') text of the hunk, context included."""
        kept = [line[1:] for line in self.lines if line[:1] in (" ", keep)]
        text = "".join(line + "\n" for line in kept)
        return text[:-1] if text and (self.old_eof if keep == "-" else self.new_eof) else text


@dataclass(frozen=True)
class FileDiff:
    path: str
    status: str  # "modified", "added", "deleted"
    hunks: tuple[Hunk, ...]


def parse_diff(patch: str) -> list[FileDiff]:
    """The files and hunks of a `git diff`; renames, copies and binary files are refused."""
    files = []
    for section in re.split(r"(?m)^(?=diff --git )", patch):
        if not section.startswith("diff --git "):
            continue
        if re.search(r"(?m)^(rename from|copy from|Binary files|GIT binary patch)", section):
            raise ScriptError(f"cannot script a rename, copy or binary change: {section.splitlines()[0]}")
        old = re.search(r"(?m)^--- (?:a/)?(.+)$", section)
        new = re.search(r"(?m)^\+\+\+ (?:b/)?(.+)$", section)
        if not old or not new:
            continue  # a mode-only change: nothing to edit
        status = (
            "added"
            if old.group(1) == "/dev/null"
            else "deleted"
            if new.group(1) == "/dev/null"
            else "modified"
        )
        path = old.group(1) if status == "deleted" else new.group(1)
        hunks = []
        for body in re.split(r"(?m)^@@[^\n]*\n", section)[1:]:
            lines, old_eof, new_eof, last = [], False, False, ""
            for line in body.splitlines():
                if line.startswith("\\"):
                    old_eof |= last in (" ", "-")
                    new_eof |= last in (" ", "+")
                elif line[:1] in (" ", "-", "+") or line == "":
                    lines.append(line if line else " ")
                    last = (line or " ")[0]
            hunks.append(Hunk(tuple(lines), old_eof, new_eof))
        files.append(FileDiff(path, status, tuple(hunks)))
    return files


def codex_patch(files: Iterable[FileDiff]) -> str:
    """The same change in Codex's apply_patch format (*** Begin Patch ... *** End Patch)."""
    out = ["*** Begin Patch"]
    for diff in files:
        if diff.status == "deleted":
            out.append(f"*** Delete File: {diff.path}")
        elif diff.status == "added":
            out.append(f"*** Add File: {diff.path}")
            out += [line for hunk in diff.hunks for line in hunk.lines if line.startswith("+")]
        else:
            out.append(f"*** Update File: {diff.path}")
            for hunk in diff.hunks:
                out.append("@@")
                out += list(hunk.lines)
                if hunk.old_eof or hunk.new_eof:
                    out.append("*** End of File")
    return "\n".join([*out, "*** End Patch"]) + "\n"


def edit_as_diff(path: str, old: str, new: str) -> FileDiff:
    lines = [f"-{line}" for line in old.splitlines()] + [f"+{line}" for line in new.splitlines()]
    return FileDiff(path, "modified", (Hunk(tuple(lines)),))


def write_as_diff(path: str, content: str) -> FileDiff:
    return FileDiff(path, "added", (Hunk(tuple(f"+{line}" for line in content.splitlines())),))


# --- scripts from tasks -----------------------------------------------------------------------


def test_command(task: Task) -> str:
    """The task's graded tests that exist before the fix (pass_to_pass), for pytest suites."""
    files = sorted({test.split("::")[0] for test in task.p2p if test.split("::")[0].endswith(".py")})
    return f"python3 -m pytest -q {' '.join(files)}" if files else ""


def script_for_task(task: Task, test: str | None = None, usage: Usage | None = None) -> Script:
    """Solve a task the way a careful agent would, with its gold patch: look, read, edit, test, finish."""
    files = parse_diff(task.patch)
    if not files:
        raise ScriptError(f"{task.instance_id}: the gold patch changes no file")
    steps = [Step("shell", command="git status --short && ls", text="Let me look at the repository.")]
    steps += [Step("read", path=f.path) for f in files if f.status == "modified"]
    steps.append(Step("patch", patch=task.patch, text="I will fix it."))
    if command := (test if test is not None else test_command(task)):
        steps.append(Step("test", command=command, text="Now the tests."))
    steps.append(Step("finish", text=f"Fixed {', '.join(f.path for f in files)}; the tests pass."))
    first_line = next((line.strip() for line in task.problem_statement.splitlines() if line.strip()), "")
    return Script(name=task.instance_id, steps=tuple(steps), match=first_line, usage=usage or Usage())


def suite_scripts(tasks: Iterable[Task], folder: Path = SCRIPTS) -> list[Script]:
    """A script per task: the shipped one where there is one, else one played from the gold patch."""
    scripts = []
    for task in tasks:
        shipped = folder / f"{task.instance_id}.yaml"
        script = script_for_task(task)
        if shipped.is_file():
            script = replace(load_script(shipped), name=task.instance_id)
        scripts.append(script if script.match else replace(script, match=script_for_task(task).match))
    return scripts


# --- turns: what each CLI is sent, one per model response --------------------------------------


@dataclass(frozen=True)
class Turn:
    step: Step  # the step this response plays (its `patch` may be one file's hunk, for Claude)
    errors: tuple[Step, ...] = ()  # error steps served before it, in order
    always: Step | None = None  # an error served for every request (the script never recovers)


def turns(script: Script, api: str) -> list[Turn]:
    """The responses a script makes on `api` ("anthropic" or "responses"), errors attached."""
    out: list[Turn] = []
    pending: list[Step] = []
    read: set[str] = set()
    for step in script.steps:
        if step.action == "error":
            if step.times is None:
                out.append(Turn(Step("finish"), tuple(pending), always=step))
                return out
            pending += [step] * step.times
            continue
        for played in _expand(step, api, read):
            out.append(Turn(played, tuple(pending)))
            pending = []
        if step.action == "read":
            read.add(step.path)
    if pending or not out or out[-1].step.action not in ("finish", "refuse"):
        out.append(Turn(Step("finish", text="Done."), tuple(pending)))
    return out


def _expand(step: Step, api: str, read: set[str]) -> list[Step]:
    """Claude edits a patch one hunk (one Edit) at a time, reading each file first; Codex at once."""
    if step.action != "patch" or api != "anthropic":
        return [step]
    out = []
    for diff in parse_diff(step.patch):
        if diff.status == "deleted":
            out.append(Step("shell", command=f"rm -- {diff.path}"))
            continue
        if diff.status == "added":
            content = "".join(h.side("+") for h in diff.hunks)
            out.append(Step("write", path=diff.path, content=content))
            continue
        if diff.path not in read:
            out.append(Step("read", path=diff.path))
            read.add(diff.path)
        out += [Step("edit", path=diff.path, old=h.side("-"), new=h.side("+")) for h in diff.hunks]
    if out:
        out[0] = replace(out[0], text=step.text, think=step.think, usage=step.usage)
        out[-1] = replace(out[-1], expect=step.expect)
    return out


# --- what a request says ----------------------------------------------------------------------


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
