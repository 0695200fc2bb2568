"""Claude Code, headless: `claude -p PROMPT --output-format stream-json --verbose`.

stdout is the CLI's own transcript, one JSON event per line (system init, assistant and user
messages with every tool call and result, api_retry notices), kept verbatim in the attempt's
transcript; the last `type: result` event carries `subtype` (success, error_max_turns,
error_max_budget_usd, error_during_execution), `is_error`, `result`, `num_turns`,
`total_cost_usd` (the CLI's own price table), `usage{input_tokens, output_tokens,
cache_creation_input_tokens, cache_read_input_tokens}`, `stop_reason` ("refusal" when the model
declined), `terminal_reason` and `api_error_status` (the HTTP status the CLI gave up on).
Tokens are recorded as: input = fresh + cache writes + cache reads, cached = cache reads.
"""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.agents.exits import ExitClass
from pipeline.agents.process import AgentUnavailable, Finished, classify_failure, describe, last_json_object
from pipeline.agents.runtime import Api
from pipeline.agents.session import Run, Session, Usage
from pipeline.agents.workspace_agent import ENV_SETTING, RUNTIME_SETTING, VendorCli, check_cli_version
from pipeline.config import Setting

KEYS = ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN")
BUDGET_SUBTYPES = ("error_max_turns", "error_max_budget_usd")
TRANSIENT_STATUSES = (408, 409, 429, 500, 502, 503, 504, 529)
ANTHROPIC_API = "https://api.anthropic.com"
ARGV_PROMPT_LIMIT = 100_000  # longer prompts go through stdin (one argument is capped at 128 KiB)


PERMISSION_MODES = ("default", "acceptEdits", "plan", "bypassPermissions", "dontAsk")


class ClaudeCode(VendorCli):
    name = "claude-code"
    KEYS = KEYS
    needs_model = True
    SETTINGS = {
        "executable": Setting(str, "claude"),
        "cli_version": Setting(str),  # a pinned version (or `latest`) from the CLI cache, not PATH
        "base_url": Setting(str, ""),  # ANTHROPIC_BASE_URL: a gateway, a relay, the scripted model
        "max_turns": Setting(int, 50),
        "max_budget_usd": Setting(float),
        "permission_mode": Setting(str, "bypassPermissions", choices=PERMISSION_MODES),
        "allowed_tools": Setting(list, []),
        "disallowed_tools": Setting(list, []),
        "append_system_prompt": Setting(str, ""),
        "runtime": RUNTIME_SETTING,
        "env": ENV_SETTING,
    }

    @classmethod
    def check_settings(cls, values: dict, raw: dict, at: str, base: Path) -> dict:
        check_cli_version(values, raw, at)
        return values

    def command(self, prompt: str) -> tuple[list[str], str | None]:
        s = self.settings
        # a long prompt, or one an option parser would take for a flag ("-2 ^ 2 ..."), goes through stdin
        via_stdin = len(prompt.encode()) > ARGV_PROMPT_LIMIT or prompt.startswith("-")
        argv = [
            self.executable(),
            "-p",
            *([] if via_stdin else [prompt]),
            "--output-format",
            "stream-json",
            "--verbose",
            "--model",
            self.model,
            "--max-turns",
            str(s["max_turns"]),
            "--permission-mode",
            s["permission_mode"],
            "--no-session-persistence",
        ]
        if s["max_budget_usd"]:
            argv += ["--max-budget-usd", f"{s['max_budget_usd']:g}"]
        if s["allowed_tools"]:
            argv += ["--allowedTools", ",".join(s["allowed_tools"])]
        if s["disallowed_tools"]:
            argv += ["--disallowedTools", ",".join(s["disallowed_tools"])]
        if s["append_system_prompt"]:
            argv += ["--append-system-prompt", s["append_system_prompt"]]
        return argv, prompt if via_stdin else None

    def run(self, session: Session) -> Run:
        runtime = session.runtime
        argv, stdin = self.command(session.prompt)
        extra = {"DISABLE_AUTOUPDATER": "1", **self.passthrough()}  # the version must not change mid-day
        upstream = self.settings["base_url"] or ANTHROPIC_API
        if self.settings["base_url"] or runtime.name != "host":
            extra["ANTHROPIC_BASE_URL"] = runtime.endpoint(upstream)
        if runtime.name != "host":  # nothing else is reachable: no telemetry, no update checks
            extra["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] = "1"
        elif self.settings["permission_mode"] == "bypassPermissions" and os.geteuid() == 0:
            extra["IS_SANDBOX"] = "1"  # the CLI refuses to bypass permissions as root without it
        session.transcript.note("$ " + describe(argv, session.prompt))
        result = ResultEvent()
        finished = runtime.execute(
            session,
            argv,
            extra,
            keys=KEYS,
            api=Api(upstream, self.auth_headers()) if runtime.name != "host" else None,
            stdin=stdin,
            on_line=result.read,
        )
        return parse(finished, result.event)

    @staticmethod
    def auth_headers() -> dict[str, str]:
        """What the relay adds for a CLI in a container: the API key as the Messages API takes it.
        An OAuth token (`claude setup-token`) is tied to the CLI's own login flow: host runtime only."""
        if key := os.environ.get("ANTHROPIC_API_KEY"):
            return {"x-api-key": key}
        if os.environ.get("CLAUDE_CODE_OAUTH_TOKEN"):
            raise AgentUnavailable(
                "CLAUDE_CODE_OAUTH_TOKEN works with `settings.runtime: host` only; "
                "export ANTHROPIC_API_KEY to run claude in the task's container"
            )
        return {}


class ResultEvent:
    """Keeps the last `type: result` event as the stream goes by: a long transcript may outgrow
    the captured stdout, never this."""

    def __init__(self) -> None:
        self.event: dict | None = None

    def read(self, line: str) -> str:
        if '"result"' in line and (event := last_json_object(line)) and event.get("type") == "result":
            self.event = event
        return ""  # never a reason to stop


def parse(finished: Finished, result: dict | None) -> Run:
    if finished.timed_out:
        return Run(ExitClass.TIMEOUT, usage(result), detail="killed at the attempt's time limit")
    if result is None:
        text = (finished.stderr.strip() or finished.stdout.strip())[-1000:]
        kind, transient = classify_failure(text)
        return Run(kind, transient=transient, detail=f"no result event (exit {finished.exit_code}): {text}")
    subtype = str(result.get("subtype", ""))
    if subtype in BUDGET_SUBTYPES:
        return Run(ExitClass.BUDGET_EXHAUSTED, usage(result), detail=subtype)
    if subtype == "success" and not result.get("is_error"):
        return Run(ExitClass.SUBMITTED, usage(result))
    text = " ".join([str(result.get("result") or ""), *map(str, result.get("errors") or [])]).strip()
    if result.get("stop_reason") == "refusal":  # the model declined: its behaviour, not the API's
        return Run(ExitClass.AGENT_ERROR, usage(result), detail=f"refusal: {text}"[:2000])
    if isinstance(status := result.get("api_error_status"), int):
        return Run(
            ExitClass.API_ERROR,
            usage(result),
            transient=status in TRANSIENT_STATUSES,
            detail=f"HTTP {status}: {text}"[:2000],
        )
    kind, transient = classify_failure(text)
    return Run(kind, usage(result), transient=transient, detail=f"{subtype}: {text}"[:2000])


def usage(result: dict | None) -> Usage:
    if not result:
        return Usage()
    tokens = result.get("usage") or {}
    fresh = int(tokens.get("input_tokens") or 0)
    written = int(tokens.get("cache_creation_input_tokens") or 0)
    read = int(tokens.get("cache_read_input_tokens") or 0)
    return Usage(
        cost_usd=float(result.get("total_cost_usd") or 0.0),
        input_tokens=fresh + written + read,
        output_tokens=int(tokens.get("output_tokens") or 0),
        cached_tokens=read,
        turns=int(result.get("num_turns") or 0),
    )
