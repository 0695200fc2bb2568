"""Any other CLI agent, from a command template.

The template is split like a shell line (no shell runs it) and each word may hold the
placeholders {prompt}, {prompt_file}, {workspace} and {model}. Prefer {prompt_file}: a prompt
inside `bash -c '...'` would be code. Exit status 0 is `submitted`; otherwise the output decides
between `api_error` and `agent_error`, and `budget_regex` marks `budget_exhausted`. Cost, tokens
and turns come from the last match of each configured regex in the output (group 1; token counts
may read "2.1k" or "1.2M"); without a cost regex the cost is computed from the tokens when the
subject has a price.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from pipeline.agents.exits import ExitClass
from pipeline.agents.process import (
    agent_env,
    classify_failure,
    cli_version,
    describe,
    executable_sha256,
    run_process,
)
from pipeline.agents.session import Run, Session, Usage
from pipeline.agents.workspace_agent import ENV_SETTING, DriverAdapter
from pipeline.config import ConfigError, Setting, Subject

_SCALE = {"": 1, "k": 1_000, "m": 1_000_000}


def number(text: str) -> float:
    """'1,234' -> 1234, '2.1k' -> 2100, '1.5M' -> 1500000."""
    found = re.fullmatch(r"\s*\$?([\d,]*\.?\d+)\s*([kKmM]?)\s*", text)
    if not found:
        raise ValueError(f"not a number: {text!r}")
    return float(found.group(1).replace(",", "")) * _SCALE[found.group(2).lower()]


def last_match(pattern: str, text: str) -> float | None:
    if not pattern:
        return None
    found = [m.group(1) if m.groups() else m.group(0) for m in re.finditer(pattern, text)]
    for value in reversed(found):
        try:
            return number(value)
        except ValueError:
            continue
    return None


class Command(DriverAdapter):
    name = "command"
    SETTINGS = {
        "template": Setting(str, required=True),
        "version_command": Setting(str, ""),
        "cost_regex": Setting(str, ""),
        "input_tokens_regex": Setting(str, ""),
        "output_tokens_regex": Setting(str, ""),
        "cached_tokens_regex": Setting(str, ""),
        "turns_regex": Setting(str, ""),
        "budget_regex": Setting(str, ""),
        "env": ENV_SETTING,
    }

    @classmethod
    def check_settings(cls, values: dict, raw: dict, at: str, base: Path) -> dict:
        try:
            words = shlex.split(values["template"])
        except ValueError as err:
            raise ConfigError(f"{at}: field 'settings.template' cannot be split: {err}") from err
        if not words or not any(p in values["template"] for p in ("{prompt}", "{prompt_file}")):
            raise ConfigError(
                f"{at}: field 'settings.template' must pass the task with {{prompt}} or {{prompt_file}}"
            )
        return values

    self_contained = False

    def __init__(self, subject: Subject) -> None:
        self.model = subject.model
        self.settings = subject.settings
        self.price = subject.price
        self.secret_env = tuple(self.settings["env"])
        self.words = shlex.split(self.settings["template"])

    def version(self) -> str:
        if self.settings["version_command"]:
            found = cli_version(shlex.split(self.settings["version_command"]))
            return f"{self.words[0]} {found} / {self.model or '-'}"
        return f"{self.words[0]} / {self.model or '-'}"

    def sha256(self) -> str:
        return executable_sha256(self.words[0])

    def argv(self, session: Session) -> list[str]:
        values = {
            "{prompt_file}": str(session.workspace.prompt_file),
            "{prompt}": session.prompt,
            "{workspace}": str(session.workspace.path),
            "{model}": self.model,
        }
        argv = []
        for word in self.words:
            for placeholder, value in values.items():
                word = word.replace(placeholder, value)
            argv.append(word)
        return argv

    def run(self, session: Session) -> Run:
        argv = self.argv(session)
        session.transcript.note("$ " + describe(argv, session.prompt))
        finished = run_process(
            argv,
            session.workspace.path,
            agent_env(session.workspace.home, self.secret_env),
            session.timeout_s,
            session.transcript,
        )
        output = finished.stdout + finished.stderr
        used = self.usage(output)
        if finished.timed_out:
            return Run(ExitClass.TIMEOUT, used, detail="killed at the attempt's time limit")
        if self.settings["budget_regex"] and re.search(self.settings["budget_regex"], output):
            return Run(ExitClass.BUDGET_EXHAUSTED, used, detail="budget_regex matched")
        if finished.exit_code == 0:
            return Run(ExitClass.SUBMITTED, used)
        tail = output.strip()[-1000:]
        kind, transient = classify_failure(tail)
        return Run(kind, used, transient=transient, detail=f"exit {finished.exit_code}: {tail}")

    def usage(self, output: str) -> Usage:
        s = self.settings
        read = {
            key: last_match(s[f"{key}_regex"], output)
            for key in ("cost", "input_tokens", "output_tokens", "cached_tokens", "turns")
        }
        tokens = {key: int(read[key] or 0) for key in ("input_tokens", "output_tokens", "cached_tokens")}
        cost = read["cost"]
        if cost is None and self.price is not None:
            cost = self.price.cost(tokens["input_tokens"], tokens["output_tokens"], tokens["cached_tokens"])
        return Usage(cost_usd=cost or 0.0, turns=int(read["turns"] or 0), **tokens)
