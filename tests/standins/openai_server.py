"""A stand-in OpenAI-compatible chat endpoint on 127.0.0.1 (standard library only).

It answers POST /v1/chat/completions from a script: reply number n (n = the assistant messages
already in the conversation) is `script[n]` (the last one repeats). It checks the bearer key
when it has one, can fail the first requests with given HTTP statuses, reports usage like the
real API, and keeps every request for the test to inspect.

    python tests/standins/openai_server.py script.json --port 8000 [--key KEY]
"""

from __future__ import annotations

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class StandInServer:
    def __init__(
        self, script: list[str], key: str | None = None, failures: list[int] | None = None, port: int = 0
    ) -> None:
        self.script = script
        self.key = key
        self.failures = list(failures or [])
        self.requests: list[dict] = []
        self.statuses: list[int] = []
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> StandInServer:
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def answer(self, headers: dict[str, str], body: dict) -> tuple[int, dict]:
        with self._lock:
            self.requests.append({"headers": headers, "body": body})
            if self.key is not None and headers.get("authorization") != f"Bearer {self.key}":
                return 401, {
                    "error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}
                }
            if self.failures:
                status = self.failures.pop(0)
                return status, {"error": {"message": f"stand-in failure {status}", "type": "server_error"}}
        turn = sum(m.get("role") == "assistant" for m in body.get("messages", []))
        content = self.script[min(turn, len(self.script) - 1)]
        return 200, {
            "id": f"chatcmpl-standin-{turn}",
            "object": "chat.completion",
            "model": body.get("model"),
            "choices": [
                {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}
            ],
            "usage": {
                "prompt_tokens": 1000 + 100 * turn,
                "completion_tokens": 50,
                "total_tokens": 1050 + 100 * turn,
                "prompt_tokens_details": {"cached_tokens": 800 if turn else 0},
            },
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, reply = server.answer(headers, body)
                server.statuses.append(status)
                self._send(status, reply)

            def _send(self, status: int, reply: dict) -> None:
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        return Handler


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("script", help="a JSON list of assistant replies")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--key")
    args = parser.parse_args()
    with open(args.script) as handle, StandInServer(json.load(handle), args.key, port=args.port) as srv:
        print(f"serving on {srv.url}", flush=True)
        threading.Event().wait()
