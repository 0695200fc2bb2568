"""A minimal bash-loop agent (after mini-swe-agent) on any OpenAI-compatible chat endpoint.

Each model turn must hold exactly one bash command; it runs in the workspace through a
candlebench sandbox (`process`: a fresh bash with a minimal environment and resource limits;
`docker`: a fresh container without network) with a per-command time limit, and its output
is the next message. The run ends when a command's output starts with the sentinel line
`COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT`, or at the turn, cost or wall-time limit. Open-weights
models served by vLLM, llama.cpp or Ollama make a stable control subject.

The key comes from the environment variable the subject names and goes only into the request
header; the commands never see it. HTTP 429, 5xx and connection errors are retried with
exponential back-off; the final failure is recorded as `api_error`.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from functools import cached_property

from pipeline.agents.exits import ExitClass
from pipeline.agents.process import backoff
from pipeline.agents.session import Run, Session, Usage
from pipeline.agents.workspace_agent import DriverAdapter
from pipeline.config import Price, Setting, Subject
from pipeline.sandbox import BACKENDS, Limits, Sandbox, open_sandbox

LOOP_VERSION = "1"  # bump when the prompts or the loop change: it is part of the agent's version
SENTINEL = "COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"
SYSTEM = f"""You are a software engineer fixing an issue in a repository, working through a bash shell.

Every reply holds a short THOUGHT and then exactly one bash code block with one command (chain
steps with && or use a heredoc):

```bash
your command here
```

The command runs in the repository's root folder, each time in a fresh shell (cd and exported
variables do not persist), with a time limit of {{timeout:g}} seconds. Do not start editors,
pagers or anything interactive. Edit files with sed, cat <<'EOF' or a short python script.

When the fix is complete, reply with this command alone; it submits the repository as it is:

```bash
echo {SENTINEL}
```
"""
INSTANCE = """<task>
{prompt}</task>

Make the change the task asks for by editing the repository's files. Look around first, then
edit, then check your change, then submit."""
FORMAT_ERROR = (
    "Your reply must hold exactly one ```bash code block with one command (found {n}). "
    f"To finish, reply with `echo {SENTINEL}`."
)
_BLOCK = re.compile(r"```(?:bash|sh)?[ \t]*\n(.*?)\n?```", re.DOTALL)


class APIError(RuntimeError):
    """The endpoint failed; `transient` when retrying could help."""

    def __init__(self, message: str, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


class ChatClient:
    """POST {base_url}/chat/completions, with bounded retries on transient failures."""

    def __init__(
        self,
        base_url: str,
        model: str,
        key_env: str,
        temperature: float,
        retries: int,
        backoff_s: float,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.key_env = key_env
        self.temperature = temperature
        self.retries = retries
        self.backoff_s = backoff_s
        self.sleep = sleep

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.key_env:
            key = os.environ.get(self.key_env)
            if not key:
                raise APIError(f"environment variable {self.key_env} is not set", transient=False)
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def complete(self, messages: list[dict], timeout_s: float) -> dict:
        body = json.dumps(
            {"model": self.model, "messages": messages, "temperature": self.temperature}
        ).encode()
        failure, delay = "", 0.0
        for retry in range(self.retries + 1):
            if retry:
                self.sleep(delay)
            request = urllib.request.Request(self.url, data=body, headers=self._headers(), method="POST")
            try:
                with urllib.request.urlopen(request, timeout=timeout_s) as response:
                    reply = json.loads(response.read())
                if not isinstance(reply, dict) or not reply.get("choices"):
                    raise APIError(f"malformed response: {str(reply)[:300]}", transient=False)
                return reply
            except urllib.error.HTTPError as err:
                text = err.read()[:500].decode("utf-8", errors="replace")
                if err.code != 429 and err.code < 500:
                    raise APIError(f"HTTP {err.code}: {text}", transient=False) from err
                failure = f"HTTP {err.code}: {text}"
                hint = err.headers.get("Retry-After", "") if err.headers else ""
                delay = min(float(hint), 60.0) if hint.replace(".", "", 1).isdigit() else 0.0
            except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
                failure, delay = f"connection error: {getattr(err, 'reason', err)}", 0.0
            except json.JSONDecodeError as err:
                raise APIError(f"response is not JSON: {err}", transient=False) from err
            delay = max(delay, backoff(retry + 1, self.backoff_s))
        raise APIError(f"{failure} (after {self.retries} retries)", transient=True)


class OpenAICompatible(DriverAdapter):
    name = "openai-compatible"
    needs_model = needs_price = True
    SETTINGS = {
        "base_url": Setting(str, required=True),
        "api_key_env": Setting(str, ""),
        "max_turns": Setting(int, 50),
        "max_budget_usd": Setting(float),
        "command_timeout_s": Setting(float, 60.0),
        "request_timeout_s": Setting(float, 300.0),
        "sandbox": Setting(str, "process", choices=tuple(BACKENDS)),
        "temperature": Setting(float, 0.0),
        "output_chars": Setting(int, 10_000),
    }

    def __init__(self, subject: Subject, sleep: Callable[[float], None] = time.sleep) -> None:
        s = subject.settings
        self.model = subject.model
        self.settings = s
        self.price: Price = subject.price
        self.secret_env = (s["api_key_env"],) if s["api_key_env"] else ()
        self.self_contained = s["sandbox"] == "docker"
        self.client = ChatClient(
            s["base_url"],
            subject.model,
            s["api_key_env"],
            s["temperature"],
            subject.retries,
            subject.backoff_s,
            sleep,
        )

    def version(self) -> str:
        return f"bash-loop/{LOOP_VERSION} / {self.model}"

    def sha256(self) -> str:
        return ""  # the loop is candlebench's own code, versioned by LOOP_VERSION

    @cached_property
    def sandbox(self) -> Sandbox:
        return open_sandbox(self.settings["sandbox"])

    def run(self, session: Session) -> Run:
        s, log = self.settings, session.transcript
        deadline = time.monotonic() + session.timeout_s
        messages = [
            {"role": "system", "content": SYSTEM.format(timeout=s["command_timeout_s"])},
            {"role": "user", "content": INSTANCE.format(prompt=session.prompt)},
        ]
        for message in messages:
            log.event(**message)
        used = Usage()
        while True:
            if s["max_turns"] and used.turns >= s["max_turns"]:
                return Run(ExitClass.BUDGET_EXHAUSTED, used, detail=f"max_turns {s['max_turns']} reached")
            if s["max_budget_usd"] and used.cost_usd >= s["max_budget_usd"]:
                return Run(
                    ExitClass.BUDGET_EXHAUSTED, used, detail=f"max_budget_usd {s['max_budget_usd']:g} reached"
                )
            left = deadline - time.monotonic()
            if left <= 0:
                return Run(ExitClass.TIMEOUT, used, detail="wall-time limit reached")
            try:
                reply = self.client.complete(messages, timeout_s=min(s["request_timeout_s"], left))
            except APIError as err:
                log.event(role="error", content=str(err))
                return Run(ExitClass.API_ERROR, used, detail=str(err))
            step = self.usage(reply)
            used = used + step
            content = str((reply["choices"][0].get("message") or {}).get("content") or "")
            messages.append({"role": "assistant", "content": content})
            log.event(role="assistant", content=content, turn=used.turns, usage=step.__dict__)
            commands = _BLOCK.findall(content)
            if len(commands) != 1:
                messages.append({"role": "user", "content": FORMAT_ERROR.format(n=len(commands))})
                log.event(**messages[-1])
                continue
            limit = max(min(s["command_timeout_s"], deadline - time.monotonic()), 0.1)
            # .git read-only: the host runs git there afterwards, and must not meet the agent's config
            result = self.sandbox.run(
                session.workspace.path,
                commands[0],
                Limits(timeout_s=limit),
                image=session.image,
                readonly=(".git",),
            )
            first = result.output.lstrip().splitlines()[:1]
            if not result.timed_out and first == [SENTINEL]:
                log.event(role="tool", content=SENTINEL, exit_code=result.exit_code)
                return Run(ExitClass.SUBMITTED, used)
            messages.append({"role": "user", "content": self.observation(result, limit)})
            log.event(**messages[-1], exit_code=result.exit_code)

    def usage(self, reply: dict) -> Usage:
        tokens = reply.get("usage") or {}
        prompt = int(tokens.get("prompt_tokens") or 0)
        completion = int(tokens.get("completion_tokens") or 0)
        cached = int((tokens.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
        return Usage(self.price.cost(prompt, completion, cached), prompt, completion, cached, turns=1)

    def observation(self, result, limit: float) -> str:
        if result.timed_out:
            return (
                f"<returncode>timeout</returncode>\nThe command was killed after {limit:g}s. "
                "Run something shorter, or in the background with a time limit."
            )
        output, cap = result.output, self.settings["output_chars"]
        if len(output) > cap:
            output = (
                output[: cap // 2]
                + f"\n... {len(output) - cap} characters elided ...\n"
                + output[-cap // 2 :]
            )
        return f"<returncode>{result.exit_code}</returncode>\n<output>\n{output}</output>"
