"""Alerts for confirmed shifts and harness suspects: a generic JSON webhook or a Slack payload.

Each alert is sent once per target: a sent-log beside the warehouse remembers what went out,
so a re-run of the same day, or of the whole history, never repeats an alert.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

FORMATS = ("json", "slack")


@dataclass(frozen=True)
class Target:
    url: str
    format: str = "json"  # json | slack

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"alert target {self.url}: format must be one of {FORMATS}")


@dataclass(frozen=True)
class Alert:
    kind: str  # "shift" | "harness_suspect"
    subject: str  # "" for a harness suspect day
    date: str
    summary: str
    details: dict = field(default_factory=dict)
    attribution: str = ""  # a shift's: model, agent harness, evaluation harness, provider, subject
    attribution_reason: str = ""

    @property
    def key(self) -> str:
        return hashlib.sha256(f"{self.kind}|{self.subject}|{self.date}".encode()).hexdigest()[:16]


def payload(alert: Alert, fmt: str) -> dict:
    if fmt == "slack":
        icon = ":chart_with_downwards_trend:" if alert.kind == "shift" else ":warning:"
        return {
            "text": f"{icon} candlebench: {alert.summary}",
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": f"{icon} *{alert.summary}*"}}],
        }
    return {"source": "candlebench", **asdict(alert)}


class Notifier:
    def __init__(self, targets: list[Target], sent_log: Path, timeout_s: float = 10.0) -> None:
        self.targets = targets
        self.sent_log = Path(sent_log)
        self.timeout_s = timeout_s

    def _sent(self) -> set[str]:
        if not self.sent_log.exists():
            return set()
        return {line.strip() for line in self.sent_log.read_text().splitlines() if line.strip()}

    def send(self, alerts: list[Alert]) -> tuple[list[str], list[str]]:
        """Post every alert not yet sent to each target; returns (sent, failed) descriptions."""
        already = self._sent()
        sent, failed = [], []
        for alert in alerts:
            for target in self.targets:
                mark = f"{alert.key}|{target.url}"
                if mark in already:
                    continue
                body = json.dumps(payload(alert, target.format)).encode()
                request = urllib.request.Request(
                    target.url, data=body, headers={"Content-Type": "application/json"}
                )
                try:
                    with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                        ok = 200 <= response.status < 300
                except (urllib.error.URLError, OSError) as err:
                    failed.append(f"{alert.summary} -> {target.url}: {err}")
                    continue
                if ok:
                    self.sent_log.parent.mkdir(parents=True, exist_ok=True)
                    with self.sent_log.open("a") as log:
                        log.write(mark + "\n")
                    already.add(mark)
                    sent.append(f"{alert.summary} -> {target.url}")
        return sent, failed


def suspect_alerts(suspects: list[dict], today: dt.date, recent_days: int = 7) -> list[Alert]:
    """Harness-suspect days of the last `recent_days` days: never blamed on a model."""
    since = (today - dt.timedelta(days=recent_days - 1)).isoformat()
    return [
        Alert(
            "harness_suspect",
            "",
            day["date"],
            f"harness suspect on {day['date']}: check the grader before blaming models",
            day,
        )
        for day in suspects
        if day["date"] >= since
    ]


def shift_alert(
    subject: str,
    day: str,
    direction: str,
    alarm: dict,
    verdict: dict | None,
    confirmed_on: str | None = None,
    attribution: tuple[str, str] | None = None,
) -> Alert:
    """The alert for a confirmed alarm: what moved, by how much that day, the week's verdict and
    what the shift is attributed to (label, reason)."""
    moved = "dropped" if direction == "down" else "rose"
    how = (
        "confirmed by extra trials"
        if confirmed_on in (None, day)
        else f"confirmed by {confirmed_on}'s trials"
    )
    summary = (
        f"{subject} {moved} on {day}: {alarm['difference']:+.1%} against its baseline "
        f"(z={alarm['z']:+.1f}, {alarm['rule']}), {how}"
    )
    if verdict and verdict.get("difference") is not None:
        summary += (
            f"; last 7 days {verdict['verdict']} {verdict['difference']:+.1%} "
            f"[{verdict['ci_low']:+.1%}, {verdict['ci_high']:+.1%}]"
        )
    label, reason = attribution or ("", "")
    if label:
        summary += f"; attributed to {label}: {reason}"
    return Alert("shift", subject, day, summary, {"alarm": alarm, "verdict": verdict or {}}, label, reason)
