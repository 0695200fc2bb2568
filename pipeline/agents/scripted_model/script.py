"""Scripts: the neutral steps a scripted model plays, parsed and checked (see the package's docstring)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import yaml

# the shipped plays, <instance_id>.yaml
SCRIPTS = Path(__file__).resolve().parents[2] / "suites" / "demo" / "scripts"
ACTIONS = ("shell", "test", "read", "edit", "write", "patch", "finish", "error", "refuse")
OPTIONS = ("say", "think", "expect", "usage", "times", "repeat", "in_stream", "retry_after_ms", "retry")
RETRYABLE = (408, 409, 429)  # the client errors worth another try
CALL_KINDS = ("function_call", "custom_tool_call", "local_shell_call")
ANTHROPIC_ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "api_error",
    529: "overloaded_error",
}
OPENAI_ERRORS = {
    400: "invalid_request_error",
    401: "invalid_api_key",
    429: "rate_limit_exceeded",
    500: "server_error",
    503: "server_error",
}


class ScriptError(ValueError):
    """A script is malformed; the message names the file and the step."""


# --- scripts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """Tokens of one response: fresh input, cache reads and writes, output."""

    input_tokens: int = 1000
    output_tokens: int = 100
    cache_read: int = 0
    cache_write: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_read + other.cache_read,
            self.cache_write + other.cache_write,
        )


@dataclass(frozen=True)
class Step:
    action: str  # one of ACTIONS
    command: str = ""  # shell, test
    path: str = ""  # read, edit, write
    old: str = ""  # edit
    new: str = ""  # edit
    content: str = ""  # write
    patch: str = ""  # patch
    text: str = ""  # finish, refuse; `say` on a tool step
    think: str = ""  # thinking shown before the step (Claude: a thinking block; Codex: a reasoning summary)
    expect: str = ""  # regex this step's tool result must match (checked when the next request comes)
    usage: Usage | None = None
    status: int = 0  # error
    times: int | None = None  # error: requests that get it (None: every one)
    in_stream: bool = False  # error: sent inside a 200 stream instead of as the HTTP status
    retry_after_ms: int | None = None  # error: the retry-after-ms header
    retry: bool = True  # error: False sends x-should-retry: false (the SDKs then give up at once);
    # client errors but 408/409/429 always do


@dataclass(frozen=True)
class Script:
    name: str
    steps: tuple[Step, ...]
    match: str = ""  # text of the task prompt that selects this script ("" matches any)
    usage: Usage = Usage()


def _usage(raw: object, where: str) -> Usage:
    if not isinstance(raw, dict) or set(raw) - {"input_tokens", "output_tokens", "cache_read", "cache_write"}:
        raise ScriptError(f"{where}: usage takes input_tokens, output_tokens, cache_read, cache_write")
    if not all(isinstance(v, int) and v >= 0 for v in raw.values()):
        raise ScriptError(f"{where}: usage values must be non-negative integers")
    return replace(Usage(), **raw)


def _step(raw: object, where: str) -> list[Step]:
    if not isinstance(raw, dict):
        raise ScriptError(f"{where}: a step is a mapping such as {{shell: ls}}, got {raw!r}")
    actions = [key for key in raw if key in ACTIONS]
    unknown = sorted(set(raw) - set(ACTIONS) - set(OPTIONS))
    if len(actions) != 1 or unknown:
        raise ScriptError(
            f"{where}: a step has exactly one of {', '.join(ACTIONS)} (and options "
            f"{', '.join(OPTIONS)}); got {', '.join(map(str, raw))}"
        )
    action, value = actions[0], raw[actions[0]]
    fields: dict = {
        "action": action,
        "expect": str(raw.get("expect") or ""),
        "think": str(raw.get("think") or ""),
    }
    if "usage" in raw:
        fields["usage"] = _usage(raw["usage"], where)
    if action in ("shell", "test", "read", "patch", "finish", "refuse"):
        if not isinstance(value, str) or (action not in ("finish", "refuse") and not value.strip()):
            raise ScriptError(f"{where}: {action} takes a string")
        key = {"shell": "command", "test": "command", "read": "path", "patch": "patch"}.get(action, "text")
        fields[key] = value
        if action not in ("finish", "refuse"):
            fields["text"] = str(raw.get("say") or "")
    elif action in ("edit", "write"):
        needed = ("path", "old", "new") if action == "edit" else ("path", "content")
        if (
            not isinstance(value, dict)
            or set(value) != set(needed)
            or not all(isinstance(value[k], str) for k in needed)
        ):
            raise ScriptError(f"{where}: {action} takes {{{', '.join(needed)}}} (strings)")
        fields.update(value, text=str(raw.get("say") or ""))
    else:  # error
        if not isinstance(value, int) or not 400 <= value <= 599:
            raise ScriptError(f"{where}: error takes an HTTP status (400-599), got {value!r}")
        times = raw.get("times")
        if times is not None and (not isinstance(times, int) or times < 1):
            raise ScriptError(f"{where}: times must be a positive integer")
        fields.update(
            status=value,
            times=times,
            in_stream=bool(raw.get("in_stream")),
            retry_after_ms=raw.get("retry_after_ms"),
            retry=raw.get("retry", True) is not False,
        )
    repeat = raw.get("repeat", 1)
    if not isinstance(repeat, int) or repeat < 1:
        raise ScriptError(f"{where}: repeat must be a positive integer")
    return [Step(**fields)] * repeat


def parse_script(raw: object, name: str = "script") -> Script:
    """A script from its YAML/JSON value: {match?, usage?, steps: [...]} or just the list of steps."""
    if isinstance(raw, list):
        raw = {"steps": raw}
    if not isinstance(raw, dict) or not isinstance(raw.get("steps"), list) or not raw["steps"]:
        raise ScriptError(f"{name}: a script is a mapping with a non-empty 'steps' list")
    if unknown := sorted(set(raw) - {"steps", "match", "usage", "name"}):
        raise ScriptError(f"{name}: unknown field {unknown[0]!r} (known: name, match, usage, steps)")
    steps = [s for i, entry in enumerate(raw["steps"]) for s in _step(entry, f"{name}: step {i + 1}")]
    usage = _usage(raw["usage"], f"{name}: usage") if "usage" in raw else Usage()
    return Script(
        name=str(raw.get("name") or name), steps=tuple(steps), match=str(raw.get("match") or ""), usage=usage
    )


def load_script(path: Path) -> Script:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ScriptError(f"{path}: {err}") from err
    return parse_script(raw, path.stem)


# --- unified diffs ----------------------------------------------------------------------------
