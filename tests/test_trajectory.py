"""Behaviour read from transcripts: hand-made snippets of each CLI's format for the edge cases
(the real CLIs' own transcripts are read in test_real_clis.py), and the shell-command rules."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from pipeline.agents import trajectory
from pipeline.agents.shell_commands import edits_files, files_read, runs_tests, unwrap
from pipeline.agents.trajectory import Behaviour
from pipeline.agents.workspace_agent import WorkspaceAgent

CWD = "/work/attempt/workspace"


def lines(*events: dict | str) -> str:
    return "".join((e if isinstance(e, str) else json.dumps(e)) + "\n" for e in events)


def assistant(*blocks: dict, message: str = "msg_1") -> dict:
    return {"type": "assistant", "message": {"id": message, "role": "assistant", "content": list(blocks)}}


def tool(ident: str, name: str, **given: object) -> dict:
    return {"type": "tool_use", "id": ident, "name": name, "input": given}


def result(thinking_tokens: int | None = 0) -> dict:
    details = {} if thinking_tokens is None else {"thinking_tokens": thinking_tokens}
    return {"type": "result", "subtype": "success", "usage": {"output_tokens_details": details}}


INIT = {"type": "system", "subtype": "init", "cwd": CWD}


def test_claude_code_counts_every_kind_of_call_in_the_order_made():
    text = lines(
        "# candlebench: subject s, task t",
        INIT,
        assistant({"type": "thinking", "thinking": "Look first.", "signature": "x"}),
        assistant(tool("t1", "Bash", command="git status && ls")),
        assistant(tool("t2", "Read", file_path=f"{CWD}/pkg/a.py")),
        assistant(tool("t3", "Grep", pattern="def f", path="pkg")),
        assistant(tool("t4", "Bash", command="sed -n '1,40p' pkg/b.py")),
        assistant(tool("t5", "Read", file_path=f"{CWD}/pkg/../pkg/a.py")),  # the same file again
        assistant(tool("t6", "Edit", file_path=f"{CWD}/pkg/a.py", old_string="a", new_string="b")),
        assistant(tool("t7", "Read", file_path=f"{CWD}/pkg/c.py")),  # after the first edit
        assistant(tool("t8", "Write", file_path=f"{CWD}/NOTES.md", content="x")),
        assistant(tool("t9", "Bash", command="cd pkg && timeout 600 python -m pytest -q")),
        assistant(tool("t9", "Bash", command="cd pkg && timeout 600 python -m pytest -q")),  # echoed
        assistant({"type": "text", "text": "Done."}),
        result(),
    )
    found = trajectory.read("claude-code", text)
    assert found == Behaviour(
        tool_calls=9,
        shell_commands=3,
        test_runs=1,
        edits=2,
        files_read_before_first_edit=2,  # pkg/a.py, pkg/b.py
        thinking_chars=len("Look first."),
    )


def test_malformed_lines_notes_and_stderr_are_skipped():
    text = lines(
        "# $ claude -p ...",
        INIT,
        '{"type": "assistant", "message": {"content": [',  # torn off by a kill
        "[1, 2, 3]",
        "Traceback (most recent call last):",
        assistant("not a block", tool("t1", "Bash", command="ls")),
        assistant(tool("t2", "Bash")),  # no input at all
        assistant({"type": "tool_use", "name": "Glob"}, {"type": "tool_use", "name": "Glob"}),  # no ids
        {"type": "assistant", "message": {"content": "text, not blocks"}},
        {"type": "assistant", "message": "not a message"},
        {"type": "result", "usage": ["not", "usage"]},
    )
    found = trajectory.read("claude-code", text)
    assert (found.tool_calls, found.shell_commands, found.edits) == (4, 2, 0)
    odd = lines({"type": "turn.completed", "usage": 3}, {"type": "item.completed", "item": {"type": 5}})
    assert trajectory.read("codex", odd).tool_calls == 1


def test_no_tool_calls_is_zeros_and_no_events_is_nothing():
    answered = trajectory.read(
        "claude-code", lines(INIT, assistant({"type": "text", "text": "No."}), result())
    )
    assert answered == Behaviour(0, 0, 0, 0, 0, 0)
    assert trajectory.read("claude-code", "# could not start claude: not found\n") is None
    assert trajectory.read("codex", "") is None
    assert trajectory.columns(None) == dict.fromkeys(trajectory.COLUMNS)


@pytest.mark.parametrize("driver", ["simulated", "replay", "command", "something-new"])
def test_adapters_without_a_reader_record_no_behaviour(driver):
    assert trajectory.read(driver, lines(INIT, assistant(tool("t1", "Bash", command="ls")))) is None


@pytest.mark.parametrize(
    "blocks, tokens, expected",
    [
        ([{"type": "thinking", "thinking": "abc"}, {"type": "thinking", "thinking": "de"}], 40, 5),
        ([{"type": "redacted_thinking", "data": "opaque"}], 40, None),  # thought, not shown
        ([], 120, None),  # billed thinking tokens, no block shown
        ([], 0, 0),
        ([], None, 0),  # Claude's stream shows every thinking block: none is none
    ],
)
def test_claude_thinking_is_counted_only_where_shown(blocks, tokens, expected):
    text = lines(INIT, assistant(*blocks), result(tokens))
    assert trajectory.read("claude-code", text).thinking_chars == expected


def item(kind: str, ident: str, event: str = "item.completed", **fields: object) -> dict:
    return {"type": event, "item": {"id": ident, "type": kind, **fields}}


def turn_done(reasoning: int | None = 0) -> dict:
    usage = {"input_tokens": 10, "output_tokens": 5}
    if reasoning is not None:
        usage["reasoning_output_tokens"] = reasoning
    return {"type": "turn.completed", "usage": usage}


def test_codex_items_are_counted_once_in_the_order_they_started():
    text = lines(
        {"type": "thread.started", "thread_id": "x"},
        item("reasoning", "i0", text="**Plan** read, then fix"),
        item("agent_message", "i1", text="Looking."),
        item("command_execution", "i2", "item.started", command="/bin/bash -lc 'cat -- src/a.rs'"),
        item("command_execution", "i2", command="/bin/bash -lc 'cat -- src/a.rs'", exit_code=0),
        item("command_execution", "i3", command="bash -lc 'rg -n foo src && head -n 5 src/b.rs'"),
        item("file_change", "i4", changes=[{"path": "/w/src/a.rs", "kind": "update"}]),
        item("command_execution", "i5", command="/bin/bash -lc 'cat src/c.rs'"),
        item("todo_list", "i6", "item.started", items=[]),
        item("todo_list", "i6", "item.updated", items=[{"text": "x", "completed": True}]),
        item("command_execution", "i7", "item.started", command="bash -lc 'cargo test -q'"),  # killed
        turn_done(),
        "# stderr:",
        "Reading additional input from stdin...",
    )
    assert trajectory.read("codex", text) == Behaviour(
        tool_calls=6,
        shell_commands=4,
        test_runs=1,
        edits=1,
        files_read_before_first_edit=2,  # src/a.rs, src/b.rs
        thinking_chars=len("**Plan** read, then fix"),
    )


@pytest.mark.parametrize(
    "events, expected",
    [
        ([turn_done(0)], 0),  # codex said its model did not reason
        ([turn_done(64)], None),  # reasoned, summaries not shown
        ([], None),  # killed before any turn completed: unknown
        ([item("reasoning", "r", text=""), turn_done(64)], None),
    ],
)
def test_codex_reasoning_is_counted_only_where_shown(events, expected):
    text = lines({"type": "thread.started"}, item("command_execution", "c", command="ls"), *events)
    assert trajectory.read("codex", text).thinking_chars == expected


def test_only_the_last_run_of_a_retried_attempt_counts():
    first = lines(
        INIT, assistant(tool("t1", "Bash", command="ls")), assistant(tool("t2", "Read", file_path="a.py"))
    )
    note = "# transient API error (HTTP 529: Overloaded); retry 1 of 3 in 2s from the base state\n"
    last = lines(INIT, assistant(tool("t3", "Bash", command="pytest -q")), result())
    found = trajectory.read("claude-code", first + note + last)
    assert (found.tool_calls, found.test_runs, found.files_read_before_first_edit) == (1, 1, 0)


def test_workspace_agent_records_the_behaviour_of_the_run_after_its_retry_note(suite, tmp_path):
    """Through WorkspaceAgent, with a driver that fails transiently after one call, then solves:
    the reader splits on the note WorkspaceAgent writes before it retries."""
    from pipeline.agents.session import Run

    class Driver:
        name = "claude-code"
        secret_env = ()
        self_contained = False
        runs = 0

        def version(self) -> str:
            return "fake 1"

        def sha256(self) -> str:
            return ""

        def run(self, session) -> Run:
            self.runs += 1
            calls = [tool(f"r{self.runs}{n}", "Read", file_path=f"{n}.py") for n in range(3 - self.runs)]
            session.transcript.write(lines(INIT, *(assistant(c) for c in calls)))
            if self.runs == 1:
                return Run("api_error", transient=True, detail="HTTP 529: Overloaded")
            session.transcript.write(
                lines(assistant(tool("b", "Bash", command="python -m pytest")), result())
            )
            return Run("submitted")

    task = suite.tasks()[0]
    agent = WorkspaceAgent(
        "s", Driver(), suite.checkout, tmp_path / "kept", sleep=lambda s: None, backoff_s=0
    )
    attempt = agent.solve(task, dt.date(2026, 11, 20), 0)
    transcript = Path(attempt.transcript).read_text()
    assert attempt.tries == 2 and transcript.count("# transient API error") == 1
    assert (attempt.tool_calls, attempt.shell_commands, attempt.test_runs) == (2, 1, 1)
    assert (attempt.edits, attempt.files_read_before_first_edit, attempt.thinking_chars) == (0, 1, 0)
    assert trajectory.columns(trajectory.read("claude-code", transcript)) == {
        name: getattr(attempt, name) for name in trajectory.COLUMNS
    }


def test_the_bash_loop_counts_its_commands_but_not_the_submission():
    text = lines(
        {"role": "system", "content": "You are ..."},
        {"role": "assistant", "content": "THOUGHT: look\n```bash\ncat src/a.py | head -n 30\n```", "turn": 1},
        {"role": "user", "content": "<returncode>0</returncode>", "exit_code": 0},
        {"role": "assistant", "content": "Two commands\n```bash\nls\n```\n```bash\nls\n```", "turn": 2},
        {"role": "assistant", "content": "```bash\nsed -i 's/a/b/' src/a.py && tox -e py\n```", "turn": 3},
        {"role": "assistant", "content": "```bash\necho COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT\n```"},
        {"role": "tool", "content": "COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT", "exit_code": 0},
    )
    assert trajectory.read("openai-compatible", text) == Behaviour(2, 2, 1, 1, 1, None)


# --- shell commands ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        "pytest -q tests/test_a.py",
        "python3 -m pytest -x",
        "cd /app && FOO=1 timeout 600 .venv/bin/pytest -k slow",
        "python -W ignore -m unittest discover",
        "uv run pytest",
        "tox -e py311",
        "npm test -- --watch=false",
        "yarn run test:unit",
        "npx jest src",
        "go test ./...",
        "cargo test --lib",
        "./gradlew :core:test",
        "make test",
        "bash /app/run_script.sh tests/test_a.py",
        "python manage.py test app",
        "git diff && python -m pytest",
        "ls; pytest",
    ],
)
def test_commands_that_run_tests(command):
    assert runs_tests(command)


@pytest.mark.parametrize(
    "command",
    [
        "pip install pytest",
        "cat tests/test_a.py",
        "grep -rn pytest setup.cfg",
        "echo pytest",
        "ls tests",
        "git log --oneline | head",
        "python -c 'import pytest'",
        "vim pytest.ini",
    ],
)
def test_commands_that_do_not_run_tests(command):
    assert not runs_tests(command)


@pytest.mark.parametrize(
    "command, read",
    [
        ("cat a.py b.py 2>/dev/null | head -n 5", ["a.py", "b.py"]),
        ("sed -n '1,80p' x/y.py && grep -n foo a.py", ["x/y.py", "a.py"]),
        ("grep -e foo -e bar x.py", ["x.py"]),
        ("head -n 20 ./pkg/m.py", ["./pkg/m.py"]),
        ("nl -ba pkg/a.py | sed -n 1,40p", ["pkg/a.py"]),
        ('less "my file.py"', ["my file.py"]),
        ("ls -la && cat README.md", ["README.md"]),
        ("grep -rn foo src/", []),  # a recursive search of a folder reads no named file
        ("rg foo", []),
        ("sed -i 's/a/b/' x.py", []),  # an edit
        ("cat > f.py <<'EOF'\nimport os\nEOF\ncat g.py", ["g.py"]),  # the heredoc's body is not read
        ("cat < in.txt", []),
        ("cat 'unbalanced", ["'unbalanced"]),
    ],
)
def test_files_a_command_reads(command, read):
    assert files_read(command) == read


@pytest.mark.parametrize(
    "command, edits",
    [
        ("sed -i 's/a/b/' x.py", True),
        ("sed -n '1,20p' x.py", False),
        ("perl -pi -e 's/a/b/' x.py", True),
        ("git apply fix.diff", True),
        ("patch -p1 < fix.diff", True),
        ("cat > f.py <<'EOF'\nx = 1\nEOF", True),
        ("echo 'x' >> notes.md", True),
        ("printf 'a\\n' | tee out.txt", True),
        ("cat a.py > /dev/null", False),
        ("pytest -q 2>&1 | tail -5", False),
        ("echo done", False),
    ],
)
def test_commands_that_write_files(command, edits):
    assert edits_files(command) is edits


def test_shell_wrappers_are_removed():
    assert unwrap("/bin/bash -c 'git status --short && ls'") == "git status --short && ls"
    assert unwrap("bash -lc 'cat x'") == "cat x"
    assert unwrap("git status") == "git status"
    assert unwrap("bash -lc 'unbalanced") == "bash -lc 'unbalanced"
