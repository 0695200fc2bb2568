"""Codex, headless: `codex exec --json`, one JSON event per stdout line.

stdout, the CLI's own JSONL transcript, is kept verbatim. Events read:
`turn.completed{usage:{input_tokens, cached_input_tokens, output_tokens}}` (codex sums a turn's
model responses; summed here over turns), `turn.failed{error:{message}}` and `error{message}`
(the failure), and `item.completed`. Turns count model responses, as Claude Code's `num_turns`
does: one per tool call (each completed item but messages, reasoning and warnings: a command, a
file change, a plan update, a search) plus the closing response of each completed turn. Codex
reports no cost: it is computed from the tokens and the config's price table. Codex has no turn
or budget flag, so `max_turns` and `max_budget_usd` stop the run from here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pipeline.agents.exits import ExitClass
from pipeline.agents.process import classify_failure, describe
from pipeline.agents.runtime import PLACEHOLDER, Api
from pipeline.agents.session import Run, Session, Usage
from pipeline.agents.workspace_agent import ENV_SETTING, RUNTIME_SETTING, VendorCli, check_cli_version
from pipeline.config import ConfigError, Price, Setting

KEYS = ("CODEX_API_KEY", "OPENAI_API_KEY")
OPENAI_API = "https://api.openai.com/v1"
LAST = "last_message.txt"  # codex's final message, kept beside the transcript
RELAY_KEY = "CANDLEBENCH_RELAY_KEY"  # the placeholder key a relayed provider reads
ARGV_PROMPT_LIMIT = 100_000
NOT_CALLS = ("agent_message", "reasoning", "error")  # items that are not a tool call
REFUSAL = "reason: content_filter"  # how codex reports a response the model's filter stopped


CODEX_SANDBOXES = ("read-only", "workspace-write", "danger-full-access")


class Codex(VendorCli):
    name = "codex"
    KEYS = KEYS
    needs_model = needs_price = True  # codex reports tokens only: cost comes from the price
    SETTINGS = {
        "executable": Setting(str, "codex"),
        "cli_version": Setting(str),
        "sandbox": Setting(str, "workspace-write", choices=CODEX_SANDBOXES),
        "max_turns": Setting(int),
        "max_budget_usd": Setting(float),
        "ephemeral": Setting(bool, True),
        "config": Setting(dict, {}),
        "runtime": RUNTIME_SETTING,
        "env": ENV_SETTING,
    }

    @classmethod
    def check_settings(cls, values: dict, raw: dict, at: str, base: Path) -> dict:
        check_cli_version(values, raw, at)
        for key, value in values["config"].items():
            if not isinstance(value, str | int | float | bool | list):
                raise ConfigError(f"{at}: field 'settings.config.{key}' must be a scalar or a list")
        return values

    def command(self, session: Session) -> tuple[list[str], str | None]:
        s, runtime = self.settings, session.runtime
        # a long prompt, or one an option parser would take for a flag ("-2 ^ 2 ..."), goes through stdin
        via_stdin = len(session.prompt.encode()) > ARGV_PROMPT_LIMIT or session.prompt.startswith("-")
        argv = [
            self.executable(),
            "exec",
            "--json",
            "-m",
            self.model,
            "-s",
            # in a container, the container is the sandbox: codex's own (bubblewrap) cannot nest in it
            s["sandbox"] if runtime.name == "host" else "danger-full-access",
            "-C",
            runtime.workdir(session.workspace),
            "--skip-git-repo-check",
            "-o",
            str(session.workspace.root / LAST)
            if runtime.name == "host"
            else f"{runtime.home(session.workspace)}/{LAST}",
        ]
        if s["ephemeral"]:
            argv.append("--ephemeral")
        config = dict(s["config"])
        if runtime.name != "host":
            # nothing but the model API is reachable: the plugin marketplace sync codex starts
            # would only wait out its timeouts (4 s per attempt, measured) before failing
            config = {"features.plugins": False, **config} | self.relayed_provider(
                runtime.endpoint(self.upstream())
            )
        for key, value in config.items():
            argv += ["-c", f"{key}={json.dumps(value)}"]  # JSON scalars and lists are TOML too
        argv.append("-" if via_stdin else session.prompt)
        return argv, session.prompt if via_stdin else None

    def upstream(self) -> str:
        """The Responses API the subject uses: its provider's base_url, else OpenAI's."""
        config = self.settings["config"]
        provider = config.get("model_provider", "openai")
        return str(config.get(f"model_providers.{provider}.base_url") or OPENAI_API)

    def relayed_provider(self, url: str) -> dict:
        """Config that points the subject's provider at the relay, with the relay's placeholder key
        (the built-in `openai` provider cannot be edited: a copy of it is defined instead)."""
        provider = self.settings["config"].get("model_provider", "openai")
        if provider == "openai":
            provider = "candlebench-relay"
            extra = {"model_provider": provider, f"model_providers.{provider}.name": "OpenAI (relayed)"}
            extra[f"model_providers.{provider}.wire_api"] = "responses"
        else:
            extra = {}
        return extra | {
            f"model_providers.{provider}.base_url": url,
            f"model_providers.{provider}.env_key": RELAY_KEY,
        }

    def run(self, session: Session) -> Run:
        runtime = session.runtime
        argv, stdin = self.command(session)
        events = Events(self.price, self.settings["max_turns"], self.settings["max_budget_usd"])
        session.transcript.note("$ " + describe(argv, session.prompt))
        (session.workspace.home / ".codex").mkdir(parents=True, exist_ok=True)  # codex needs it to exist
        env = {"CODEX_HOME": f"{runtime.home(session.workspace)}/.codex", **self.passthrough()}
        api = None
        if runtime.name != "host":
            env[RELAY_KEY] = PLACEHOLDER
            key = next((os.environ[k] for k in KEYS if os.environ.get(k)), "")
            api = Api(self.upstream(), {"Authorization": f"Bearer {key}"} if key else {})
        finished = runtime.execute(session, argv, env, keys=KEYS, api=api, stdin=stdin, on_line=events.read)
        if (inside := session.workspace.home / LAST).exists():  # where the container wrote it
            inside.replace(session.workspace.root / LAST)
        used = events.usage()
        if finished.stopped:
            return Run(ExitClass.BUDGET_EXHAUSTED, used, detail=finished.stopped)
        if finished.timed_out:
            return Run(ExitClass.TIMEOUT, used, detail="killed at the attempt's time limit")
        if REFUSAL in events.failed:  # the model declined: its behaviour, not the API's
            return Run(ExitClass.AGENT_ERROR, used, detail=f"refusal: {events.failed}"[:2000])
        if events.failed:
            kind, transient = classify_failure(events.failed)
            return Run(kind, used, transient=transient, detail=f"turn.failed: {events.failed}")
        if finished.exit_code == 0 and events.completed:
            return Run(ExitClass.SUBMITTED, used)
        text = events.error or finished.stderr.strip()[-1000:] or f"exit {finished.exit_code}"
        kind, transient = classify_failure(text)
        return Run(kind, used, transient=transient, detail=text[:2000])


class Events:
    """Reads the JSONL stream as it comes; says when to stop for the turn or cost budget."""

    def __init__(self, price: Price, max_turns: int | None, max_budget_usd: float | None) -> None:
        self.price = price
        self.max_turns = max_turns
        self.max_budget_usd = max_budget_usd
        self.tokens = {"input_tokens": 0, "cached_input_tokens": 0, "output_tokens": 0}
        self.calls = 0
        self.completed = 0
        self.failed = ""
        self.error = ""

    def usage(self) -> Usage:
        t = self.tokens
        return Usage(
            cost_usd=self.price.cost(t["input_tokens"], t["output_tokens"], t["cached_input_tokens"]),
            input_tokens=t["input_tokens"],
            output_tokens=t["output_tokens"],
            cached_tokens=t["cached_input_tokens"],
            turns=self.turns,
        )

    @property
    def turns(self) -> int:
        """Model responses: one per tool call, plus each completed turn's closing one."""
        return self.calls + self.completed

    def read(self, line: str) -> str:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            return ""
        if not isinstance(event, dict):
            return ""
        kind = event.get("type")
        if kind == "turn.completed":
            self.completed += 1
            for key in self.tokens:
                self.tokens[key] += int((event.get("usage") or {}).get(key) or 0)
        elif kind == "turn.failed":
            self.failed = str((event.get("error") or {}).get("message") or event.get("error") or "failed")
        elif kind == "error":
            self.error = str(event.get("message") or "error")
        elif kind == "item.completed" and (event.get("item") or {}).get("type") not in NOT_CALLS:
            self.calls += 1
        if self.max_turns and self.turns > self.max_turns:
            return f"max_turns {self.max_turns} reached"
        if self.max_budget_usd and self.usage().cost_usd >= self.max_budget_usd:
            return f"max_budget_usd {self.max_budget_usd:g} reached"
        return ""
