"""Alerts reach a real HTTP receiver on localhost, in both formats, once each."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from pipeline.report.alerts import Alert, Notifier, Target


@pytest.fixture
def receiver():
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, json.loads(body)))
            self.send_response(500 if self.path == "/broken" else 200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", received
    server.shutdown()


ALERT = Alert(
    "shift", "sim-claude-code", "2026-11-21", "sim-claude-code 51% -> 41% (p=2e-07)", {"difference": -0.10}
)


def test_json_and_slack_payloads_are_sent_once(receiver, tmp_path):
    url, received = receiver
    notifier = Notifier([Target(f"{url}/hook"), Target(f"{url}/slack", "slack")], tmp_path / "sent")
    sent, failed = notifier.send([ALERT])
    assert len(sent) == 2 and failed == []
    by_path = dict(received)
    assert by_path["/hook"]["subject"] == "sim-claude-code" and by_path["/hook"]["kind"] == "shift"
    assert by_path["/slack"]["text"].endswith("sim-claude-code 51% -> 41% (p=2e-07)")
    assert notifier.send([ALERT]) == ([], [])
    assert len(received) == 2


def test_a_failed_delivery_is_retried_later(receiver, tmp_path):
    url, received = receiver
    notifier = Notifier([Target(f"{url}/broken")], tmp_path / "sent")
    sent, failed = notifier.send([ALERT])
    assert sent == [] and len(failed) == 1
    notifier.send([ALERT])
    assert len(received) == 2


def test_unknown_format_is_named():
    with pytest.raises(ValueError, match="format must be one of"):
        Target("http://127.0.0.1:1/x", "teams")


def test_a_shift_alert_names_its_attribution_in_both_formats(receiver, tmp_path):
    from pipeline.report.alerts import shift_alert

    url, received = receiver
    alarm = {"difference": -0.21, "z": -5.2, "rule": "one-day"}
    reason = "only the claude-code latest lane moved down; opus-frozen (claude-code 2.1.300) did not"
    alert = shift_alert(
        "opus-latest", "2026-01-31", "down", alarm, None, attribution=("agent harness", reason)
    )
    assert alert.summary.endswith(f"attributed to agent harness: {reason}")
    notifier = Notifier([Target(f"{url}/hook"), Target(f"{url}/slack", "slack")], tmp_path / "sent")
    assert notifier.send([alert])[1] == []
    by_path = dict(received)
    assert by_path["/hook"]["attribution"] == "agent harness"
    assert by_path["/hook"]["attribution_reason"] == reason
    assert "attributed to agent harness" in by_path["/slack"]["text"]
    assert "attributed to agent harness" in by_path["/slack"]["blocks"][0]["text"]["text"]
    plain = shift_alert("opus-latest", "2026-01-31", "down", alarm, None)  # no lanes known: as before
    assert "attributed" not in plain.summary and plain.attribution == ""
