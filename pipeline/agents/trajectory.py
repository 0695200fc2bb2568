"""What an agent did, read from its transcript: tool calls, shell commands, test runs, edits,
files read before the first edit, and thinking length where the CLI shows it.

A transcript keeps the CLI's own stdout verbatim (Claude Code `stream-json`, `codex exec --json`
JSONL, the bash loop's own events) between candlebench's notes (lines starting with `# `); other
lines (stderr, a torn last line) are skipped. When an attempt was retried after a transient API
error, only the last run counts: the workspace was reset and the patch is that run's. The reader
is chosen by the driver's name (`READERS`); adapters without one (simulated, replay, command)
record no behaviour at all, never zeros.

Shell commands are read by `pipeline.agents.shell_commands` (which ones run tests, read files or
edit them). Thinking: the characters of the thinking the CLI printed (Claude's `thinking` blocks,
codex's `reasoning` items); None when the model thought but the CLI hid it (redacted thinking,
reasoning tokens billed with no text shown) or when the CLI never says whether it thought.
"""

from __future__ import annotations

import json
import logging
import posixpath
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields

from pipeline.agents.shell_commands import edits_files, files_read, runs_tests, unwrap

RETRY_NOTE = "# transient API error"  # WorkspaceAgent's note before it retries from the base state
EDIT_TOOLS = ("Edit", "MultiEdit", "Write", "NotebookEdit")  # Claude Code's tools that change files
READ_TOOLS = {"Read": "file_path", "NotebookRead": "notebook_path"}  # and the file each one reads
NOT_CALLS = ("agent_message", "reasoning", "error")  # codex items that are not tool calls


@dataclass(frozen=True)
class Behaviour:
    """One attempt's behaviour (its last run's, when it was retried)."""

    tool_calls: int  # every call of a tool: shell, read, edit, search, plan, sub-agent (and its calls)
    shell_commands: int
    test_runs: int  # shell commands that run tests (`shell_commands.TEST_RUN`)
    edits: int  # edit/write/apply_patch calls, and shell commands that write files
    files_read_before_first_edit: int  # distinct files; every file read, when nothing was edited
    thinking_chars: int | None  # None: thinking not shown by the CLI


COLUMNS = tuple(f.name for f in fields(Behaviour))  # the Attempt fields and attempts columns


class Tally:
    """Counts as the events go by, in the order the agent acted."""

    def __init__(self, cwd: str = "") -> None:
        self.cwd = cwd.rstrip("/")
        self.tool_calls = self.shell_commands = self.test_runs = self.edits = 0
        self.read: set[str] = set()
        self.thinking = 0  # visible characters
        self.hidden = False  # the model thought and the CLI did not show it
        self.reported: int | None = None  # thinking tokens the CLI reported, when it does

    def command(self, command: str) -> None:
        """A shell command, as the agent wrote it (a shell wrapper such as `bash -lc '...'` removed)."""
        command = unwrap(command)
        self.shell_commands += 1
        self.test_runs += runs_tests(command)
        for path in files_read(command):
            self.read_file(path)
        if edits_files(command):
            self.edits += 1

    def read_file(self, path: str) -> None:
        if self.edits:
            return
        path = posixpath.normpath(path)
        if self.cwd and path.startswith(self.cwd + "/"):
            path = path[len(self.cwd) + 1 :]
        self.read.add(path)

    def thought(self, text: str) -> None:
        self.thinking += len(text)

    def behaviour(self, shows_all_thinking: bool) -> Behaviour:
        if self.thinking:
            thinking = self.thinking
        elif self.hidden or (self.reported or 0) > 0:
            thinking = None
        else:
            thinking = 0 if shows_all_thinking or self.reported == 0 else None
        return Behaviour(
            self.tool_calls, self.shell_commands, self.test_runs, self.edits, len(self.read), thinking
        )


def events(text: str) -> Iterator[dict]:
    """The JSON objects of the transcript's last run, in order; anything else is skipped."""
    lines = text.splitlines()
    retries = [i for i, line in enumerate(lines) if line.startswith(RETRY_NOTE)]
    for line in lines[retries[-1] + 1 :] if retries else lines:
        if not line.startswith("{"):
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict):
            yield event


def _dict(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def claude_code(text: str) -> Behaviour | None:
    """Claude Code `stream-json`: `tool_use` and `thinking` blocks of the assistant messages."""
    tally, seen, any_event = Tally(), set(), False
    for event in events(text):
        any_event = True
        kind = event.get("type")
        if kind == "system" and event.get("subtype") == "init":
            tally.cwd = str(event.get("cwd") or "").rstrip("/")
        elif kind == "result":
            details = _dict(_dict(event.get("usage")).get("output_tokens_details"))
            if isinstance(details.get("thinking_tokens"), int):
                tally.reported = details["thinking_tokens"]
        elif kind == "assistant":
            content = _dict(event.get("message")).get("content")
            for block in content if isinstance(content, list) else []:
                if not isinstance(block, dict):
                    continue
                if block.get("type") == "thinking":
                    tally.thought(str(block.get("thinking") or ""))
                elif block.get("type") == "redacted_thinking":
                    tally.hidden = True
                elif block.get("type") == "tool_use":
                    ident = block.get("id") or id(block)  # a block echoed again is still one call
                    if ident not in seen:
                        seen.add(ident)
                        _claude_tool(tally, str(block.get("name") or ""), block.get("input"))
    return tally.behaviour(shows_all_thinking=True) if any_event else None


def _claude_tool(tally: Tally, name: str, given: object) -> None:
    given = given if isinstance(given, dict) else {}
    tally.tool_calls += 1
    if name == "Bash":
        tally.command(str(given.get("command") or ""))
    elif name in READ_TOOLS and given.get(READ_TOOLS[name]):
        tally.read_file(str(given[READ_TOOLS[name]]))
    elif name in EDIT_TOOLS:
        tally.edits += 1


def codex(text: str) -> Behaviour | None:
    """`codex exec --json`: items in the order they started (a killed run's last one may never
    complete), each counted once; reasoning tokens from `turn.completed`."""
    items: dict[str, dict] = {}
    tally, any_event = Tally(), False
    for event in events(text):
        any_event = True
        kind = event.get("type")
        item = event.get("item")
        if kind in ("item.started", "item.updated", "item.completed") and isinstance(item, dict):
            key = str(item.get("id") or f"item-{len(items)}")
            items[key] = {**items.get(key, {}), **item}  # insertion order: when it started
        elif kind == "turn.completed":
            reasoning = _dict(event.get("usage")).get("reasoning_output_tokens")
            if isinstance(reasoning, int):
                tally.reported = (tally.reported or 0) + reasoning
    for item in items.values():
        kind = item.get("type")
        if kind == "reasoning":
            tally.thought(str(item.get("text") or ""))
        if kind in NOT_CALLS:
            continue
        tally.tool_calls += 1
        if kind == "command_execution":
            tally.command(str(item.get("command") or ""))
        elif kind == "file_change":
            tally.edits += 1
    return tally.behaviour(shows_all_thinking=False) if any_event else None


def bash_loop(text: str) -> Behaviour | None:
    """The openai-compatible loop's events: each assistant message with one command block is one
    shell command (the submission, the sentinel command, is not); it shows no thinking apart."""
    from pipeline.agents.openai_compatible import _BLOCK, SENTINEL  # the loop's own format

    tally, any_event = Tally(), False
    for event in events(text):
        any_event = True
        if event.get("role") != "assistant":
            continue
        commands = _BLOCK.findall(str(event.get("content") or ""))
        if len(commands) == 1 and SENTINEL not in commands[0]:
            tally.tool_calls += 1
            tally.command(commands[0])
    found = tally.behaviour(shows_all_thinking=False)
    return found if any_event else None


READERS: dict[str, Callable[[str], Behaviour | None]] = {  # driver name -> its transcript's reader
    "claude-code": claude_code,
    "codex": codex,
    "openai-compatible": bash_loop,
}


def read(driver: str, text: str) -> Behaviour | None:
    """The behaviour in a transcript kept by the driver named `driver`; None when there is no
    reader for it or the CLI printed nothing to read (it did not start)."""
    reader = READERS.get(driver)
    if reader is None:
        return None
    try:
        return reader(text)
    except (AttributeError, TypeError, ValueError) as err:  # never lose a paid attempt to its log
        logging.getLogger(__name__).warning("%s transcript not read: %r", driver, err)
        return None


def columns(found: Behaviour | None) -> dict[str, int | None]:
    """The attempt's behaviour fields: all None when nothing was read."""
    return asdict(found) if found else dict.fromkeys(COLUMNS)
