"""The scripted model's HTTP server: exchanges recorded, steps served, failures injected."""

from __future__ import annotations

import contextlib
import http.server
import json
import re
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from pipeline.agents.scripted_model.plays import Turn, turns
from pipeline.agents.scripted_model.replies import Reply, Request, claude_reply, codex_reply
from pipeline.agents.scripted_model.script import OPENAI_ERRORS, RETRYABLE, Script, ScriptError, Step, Usage
from pipeline.agents.scripted_model.wire import (
    _anthropic_error,
    anthropic_message,
    anthropic_stream,
    responses_object,
    responses_stream,
)


@dataclass
class Exchange:
    """One request the server answered, as it arrived, and what it was given."""

    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: object
    status: int = 200
    api: str = ""
    script: str = ""
    step: int = -1  # the turn played (-1: none)
    action: str = ""  # the step's action, or "error", "side", "mismatch"
    tool: str = ""  # the tool called
    usage: Usage | None = None  # tokens billed for this response


@dataclass
class _State:
    exchanges: list[Exchange] = field(default_factory=list)
    served: dict[tuple[str, str, int], int] = field(default_factory=dict)
    mismatches: list[str] = field(default_factory=list)


class ScriptedModel:
    """The scripted model on 127.0.0.1, in a thread, on an ephemeral port; a context manager.

    `scripts` is one script (played for every conversation) or several, each picked by its
    `match` text in the conversation's opening prompt.
    """

    def __init__(self, scripts: Script | Iterable[Script], host: str = "127.0.0.1", port: int = 0) -> None:
        self.scripts = [scripts] if isinstance(scripts, Script) else list(scripts)
        if not self.scripts:
            raise ScriptError("the scripted model needs at least one script")
        self._state = _State()
        self._lock = threading.Lock()
        self._server = http.server.ThreadingHTTPServer((host, port), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="scripted-model")

    # lifecycle
    def __enter__(self) -> ScriptedModel:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        """The base URL: ANTHROPIC_BASE_URL as it is; a Responses provider's base_url is url + "/v1"."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # what happened
    @property
    def exchanges(self) -> list[Exchange]:
        with self._lock:
            return list(self._state.exchanges)

    @property
    def mismatches(self) -> list[str]:
        with self._lock:
            return list(self._state.mismatches)

    def played(self) -> list[Exchange]:
        """The model's answers to the agent loop (errors and side requests left out)."""
        return [e for e in self.exchanges if e.usage is not None and e.action != "side"]

    def usage(self) -> Usage:
        """Every token billed, side requests included: what the CLI should report."""
        return sum((e.usage for e in self.exchanges if e.usage is not None), Usage(0, 0, 0, 0))

    # answering
    def script_for(self, prompt: str) -> Script:
        if len(self.scripts) == 1:
            return self.scripts[0]
        for script in self.scripts:
            if script.match and script.match in prompt:
                return script
        raise ScriptError("no script matches this conversation's prompt")

    def answer(self, exchange: Exchange) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) for one request."""
        api = (
            "anthropic"
            if exchange.path.split("?")[0].endswith("/messages")
            else "responses"
            if exchange.path.split("?")[0].endswith("/responses")
            else ""
        )
        exchange.api = api
        if exchange.method != "POST" or not api or not isinstance(exchange.body, dict):
            if exchange.path.split("?")[0].endswith("/count_tokens") and isinstance(exchange.body, dict):
                return _json(200, {"input_tokens": Usage().input_tokens})
            return _json(404, {"error": {"type": "not_found_error", "message": f"no route {exchange.path}"}})
        headers = exchange.headers
        request = (
            Request.anthropic(exchange.body, headers)
            if api == "anthropic"
            else Request.responses(exchange.body, headers)
        )
        if not request.tools:  # a side request (a title, a summary): answer it, play no step
            exchange.action = "side"
            return self._reply(exchange, request, Reply("OK."), Usage(10, 2))
        try:
            script = self.script_for(request.prompt)
        except ScriptError as err:
            return self._error(exchange, api, Step("error", status=400, retry=False), str(err))
        exchange.script = script.name
        plan = turns(script, api)
        turn = plan[request.calls] if request.calls < len(plan) else Turn(Step("finish", text="Done."))
        exchange.step = request.calls
        key = (script.name, request.conversation, request.calls)
        with self._lock:
            seen = self._state.served.get(key, 0)
            self._state.served[key] = seen + 1
        failure = turn.always or (turn.errors[seen] if seen < len(turn.errors) else None)
        if failure is not None and not failure.in_stream:
            exchange.action = "error"
            return self._error(exchange, api, failure, "")
        step = turn.step
        exchange.action = step.action
        previous = plan[request.calls - 1].step if 0 < request.calls <= len(plan) else None
        if previous is not None and previous.expect and not re.search(previous.expect, request.last_result):
            note = (
                f"{script.name}: step {request.calls} expected /{previous.expect}/ in its tool result, "
                f"got: {request.last_result[-300:]!r}"
            )
            with self._lock:
                self._state.mismatches.append(note)
            exchange.action = "mismatch"
            return self._reply(
                exchange, request, Reply(f"scripted model: {note}"), step.usage or script.usage
            )
        try:
            reply = claude_reply(step, request) if api == "anthropic" else codex_reply(step, request)
            reply = replace(reply, thinking=step.think)
        except ScriptError as err:
            with self._lock:
                self._state.mismatches.append(f"{script.name}: step {request.calls + 1}: {err}")
            exchange.action = "mismatch"
            reply = Reply(f"scripted model: {err}")
        exchange.tool = reply.call.name if reply.call else ""
        return self._reply(exchange, request, reply, step.usage or script.usage, fail=failure)

    def _reply(
        self, exchange: Exchange, request: Request, reply: Reply, usage: Usage, fail: Step | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        ident = uuid.uuid4().hex[:16]
        exchange.usage = usage
        if request.api == "anthropic":
            message = anthropic_message(reply, usage, request.model, ident)
            if not request.stream:
                return _json(200, message)
            return 200, {"content-type": "text/event-stream"}, anthropic_stream(message, fail)
        response = responses_object(reply, usage, request.model, ident, request.calls)
        if not request.stream:
            return _json(200, response)
        return 200, {"content-type": "text/event-stream"}, responses_stream(response, fail)

    def _error(
        self, exchange: Exchange, api: str, step: Step, note: str
    ) -> tuple[int, dict[str, str], bytes]:
        exchange.status = step.status
        # the CLI's own retry policy decides, unless the script says to give up or the status is a
        # client error no retry can cure (an API says so with x-should-retry: false)
        final = not step.retry or (400 <= step.status < 500 and step.status not in RETRYABLE)
        headers = {"x-should-retry": "false"} if final else {}
        if step.retry_after_ms is not None:
            headers["retry-after-ms"] = str(step.retry_after_ms)
            headers["retry-after"] = str(max(step.retry_after_ms // 1000, 0))
        if api == "anthropic":
            error = _anthropic_error(step)
            body = {"type": "error", "error": {**error, "message": note or error["message"]}}
        else:
            code = OPENAI_ERRORS.get(step.status, "server_error")
            body = {"error": {"message": note or f"scripted error {step.status}", "type": code, "code": code}}
        status, base, data = _json(step.status, body)
        return status, {**base, **headers}, data


def _json(status: int, value: object) -> tuple[int, dict[str, str], bytes]:
    return status, {"content-type": "application/json"}, json.dumps(value).encode()


def _handler(model: ScriptedModel) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
            pass  # every request is recorded in `exchanges` instead

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            body: object = raw.decode("utf-8", errors="replace")
            with contextlib.suppress(json.JSONDecodeError):
                body = json.loads(raw) if raw else None
            headers = {name.lower(): value for name, value in self.headers.items()}
            exchange = Exchange(self.command, self.path, headers, body)
            try:
                status, headers, data = model.answer(exchange)
            except Exception as err:  # a bug here must reach the test as a 500, not hang the CLI
                status, headers, data = _json(500, {"error": {"type": "api_error", "message": repr(err)}})
            exchange.status = status
            with model._lock:
                model._state.exchanges.append(exchange)
            self.send_response(status)
            for name, value in {
                **headers,
                "content-length": str(len(data)),
                "request-id": f"req_{uuid.uuid4().hex[:12]}",
            }.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_HEAD = _serve

    return Handler
