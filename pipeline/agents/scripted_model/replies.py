"""Replies: what a step becomes as one CLI's tool call, found in the request's tools."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from pipeline.agents.scripted_model.plays import (
    _strings,
    codex_patch,
    edit_as_diff,
    parse_diff,
    write_as_diff,
)
from pipeline.agents.scripted_model.script import CALL_KINDS, ScriptError, Step


@dataclass(frozen=True)
class Request:
    """The parts of an API request the script needs, the same for both APIs."""

    api: str
    model: str
    stream: bool
    tools: dict[str, dict]  # name -> the tool's declaration
    prompt: str  # the opening user text (environment context and task prompt)
    calls: int  # tool calls already in the conversation: the step to play
    last_result: str  # the latest tool result's text
    cwd: str
    conversation: str

    @classmethod
    def anthropic(cls, body: dict, headers: dict[str, str]) -> Request:
        messages = body.get("messages") or []
        opening = "\n".join(_strings(messages[0].get("content"))) if messages else ""
        calls = sum(
            1
            for m in messages
            if m.get("role") == "assistant" and isinstance(m.get("content"), list)
            for block in m["content"]
            if block.get("type") == "tool_use"
        )
        results = [
            block
            for m in messages
            if m.get("role") == "user" and isinstance(m.get("content"), list)
            for block in m["content"]
            if block.get("type") == "tool_result"
        ]
        context = opening + "\n" + "\n".join(_strings(body.get("system")))
        cwd = re.search(r"Primary working directory: ([^\n]+)", context)
        return cls(
            "anthropic",
            str(body.get("model") or ""),
            bool(body.get("stream")),
            {t.get("name", ""): t for t in body.get("tools") or []},
            opening,
            calls,
            "\n".join(_strings(results[-1].get("content"))) if results else "",
            cwd.group(1).strip() if cwd else "",
            headers.get("x-claude-code-session-id") or hashlib.sha256(opening.encode()).hexdigest(),
        )

    @classmethod
    def responses(cls, body: dict, headers: dict[str, str]) -> Request:
        items = body.get("input") or []
        if isinstance(items, str):
            items = [{"type": "message", "role": "user", "content": items}]
        opening = []
        for item in items:
            if item.get("type") in CALL_KINDS:
                break
            if item.get("role") == "user":
                opening += list(_strings(item.get("content")))
        results = [i for i in items if str(i.get("type", "")).endswith("call_output")]
        prompt = "\n".join(opening)
        cwd = re.search(r"<cwd>([^<]+)</cwd>", prompt)
        tools = {t.get("name") or t.get("type", ""): t for t in body.get("tools") or []}
        return cls(
            "responses",
            str(body.get("model") or ""),
            bool(body.get("stream")),
            tools,
            prompt,
            sum(1 for i in items if i.get("type") in CALL_KINDS),
            "\n".join(_strings(results[-1].get("output"))) if results else "",
            cwd.group(1).strip() if cwd else "",
            headers.get("session-id")
            or headers.get("session_id")
            or headers.get("thread-id")
            or hashlib.sha256(prompt.encode()).hexdigest(),
        )


# --- responses: a turn rendered for each API --------------------------------------------------


@dataclass(frozen=True)
class Call:
    name: str
    input: dict | str  # JSON arguments, or a freeform tool's text
    kind: str = "function"  # "function" or "custom" (Responses), always "tool_use" on Anthropic


@dataclass(frozen=True)
class Reply:
    text: str = ""
    call: Call | None = None
    refusal: bool = False
    thinking: str = ""  # shown before the text and the call


class NoTool(ScriptError):
    """The CLI did not offer the tool a step needs."""


def _absolute(cwd: str, path: str) -> str:
    return path if path.startswith("/") or not cwd else f"{cwd.rstrip('/')}/{path}"


def claude_reply(step: Step, request: Request) -> Reply:
    """A turn as Claude Code's tools take it."""
    if step.action in ("finish", "refuse"):
        return Reply(step.text, refusal=step.action == "refuse")
    path = _absolute(request.cwd, step.path)
    call = {
        "shell": lambda: Call("Bash", {"command": step.command, "description": "Run a shell command"}),
        "test": lambda: Call("Bash", {"command": step.command, "description": "Run the tests"}),
        "read": lambda: Call("Read", {"file_path": path}),
        "edit": lambda: Call("Edit", {"file_path": path, "old_string": step.old, "new_string": step.new}),
        "write": lambda: Call("Write", {"file_path": path, "content": step.content}),
    }[step.action]()
    if call.name not in request.tools:
        raise NoTool(f"the CLI offers no {call.name} tool (it offers {', '.join(sorted(request.tools))})")
    return Reply(step.text, call)


def codex_reply(step: Step, request: Request) -> Reply:
    """A turn as Codex's tools take it: commands through its exec tool, edits through apply_patch."""
    if step.action in ("finish", "refuse"):
        return Reply(step.text, refusal=step.action == "refuse")
    if step.action in ("shell", "test", "read"):
        command = step.command if step.action != "read" else f"cat -- {step.path}"
        return Reply(step.text, _codex_shell(command, request.tools))
    files = {
        "patch": lambda: parse_diff(step.patch),
        "edit": lambda: [edit_as_diff(step.path, step.old, step.new)],
        "write": lambda: [write_as_diff(step.path, step.content)],
    }[step.action]()
    patch = codex_patch(files)
    tool = request.tools.get("apply_patch")
    if tool is None:
        raise NoTool(f"the CLI offers no apply_patch tool (it offers {', '.join(sorted(request.tools))})")
    if tool.get("type") == "custom":
        return Reply(step.text, Call("apply_patch", patch, kind="custom"))
    return Reply(step.text, Call("apply_patch", {"input": patch}))


def _codex_shell(command: str, tools: dict[str, dict]) -> Call:
    if "exec_command" in tools:
        # no login shell: the command sees the PATH the harness gave, not the one /etc/profile sets
        return Call("exec_command", {"cmd": command, "login": False})
    if "shell_command" in tools:
        return Call("shell_command", {"command": command})
    if "shell" in tools:
        return Call("shell", {"command": ["bash", "-lc", command]})
    raise NoTool(f"the CLI offers no shell tool (it offers {', '.join(sorted(tools))})")
