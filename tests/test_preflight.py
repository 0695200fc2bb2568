"""`candlebench check`: what would stop tomorrow's scheduled run, said today, subject by subject."""

from __future__ import annotations

from pathlib import Path

import yaml

from pipeline.cli import main as cli
from pipeline.preflight import preflight

STANDINS = Path(__file__).parent / "standins"
KEYS = ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "CODEX_API_KEY", "OPENAI_API_KEY", "LOCAL_KEY")


def config(tmp_path: Path, monkeypatch, subjects: list[dict], **fields) -> Path:
    path = tmp_path / "tracking.yaml"
    path.write_text(yaml.safe_dump({"trials": 1, "sandbox": "process", "subjects": subjects, **fields}))
    monkeypatch.setenv("CANDLEBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PATH", f"{STANDINS}:{Path('/usr/bin')}:{Path('/bin')}")
    for key in KEYS:
        monkeypatch.delenv(key, raising=False)
    return path


def verdicts(checks) -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {}
    for check in checks:
        found.setdefault(check.what, []).append((check.status, check.detail))
    return found


def test_the_demo_config_is_ready(tmp_path, monkeypatch, capsys):
    scenario = Path(__file__).parent.parent / "pipeline" / "defaults" / "scenario.yaml"
    path = config(
        tmp_path, monkeypatch, [{"name": "sim-codex", "adapter": "simulated", "scenario": str(scenario)}]
    )
    assert cli(["check", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "OK    suite" in out and "demo: 36 tasks" in out
    assert "OK    sandbox" in out and "every subject is simulated" in out
    assert "OK    subject sim-codex  simulated, gpt-5" in out
    assert "WARN  alerts" in out and "0 failed, 1 warning(s): ready for the scheduled run" in out


def test_what_would_fail_is_named_with_its_subject(tmp_path, monkeypatch, capsys):
    path = config(
        tmp_path,
        monkeypatch,
        [
            {
                "name": "cc",
                "adapter": "claude-code",
                "model": "sonnet",
                "settings": {"executable": "claude-nowhere"},
            },
            {
                "name": "cx",
                "adapter": "codex",
                "model": "gpt-5-codex",
                "daily_cost_cap_usd": 5,
                "price": {"input": 1, "output": 2},
            },
            {
                "name": "local",
                "adapter": "openai-compatible",
                "model": "q",
                "daily_cost_cap_usd": 0,
                "price": {"input": 0, "output": 0},
                "settings": {"base_url": "http://127.0.0.1:9/v1", "api_key_env": "LOCAL_KEY"},
            },
        ],
    )
    found = verdicts(preflight(path))
    assert found["sandbox"][0][0] == "fail" and "cc, cx, local write untrusted ones" in found["sandbox"][0][1]
    assert ("fail", "claude-code: 'claude-nowhere' is not on PATH") in found["subject cc"]
    assert ("fail", "none of ANTHROPIC_API_KEY, CLAUDE_CODE_OAUTH_TOKEN is set") in found["subject cc"]
    assert ("warn", "no daily_cost_cap_usd: a bad day can cost without limit") in found["subject cc"]
    assert ("ok", "codex, version codex 0.63.0 / gpt-5-codex") in found["subject cx"]  # the stand-in
    assert ("fail", "none of CODEX_API_KEY, OPENAI_API_KEY is set") in found["subject cx"]
    assert ("fail", "environment variable(s) LOCAL_KEY not set") in found["subject local"]
    assert any(s == "warn" and "does not answer now" in d for s, d in found["subject local"])
    assert cli(["check", "--config", str(path)]) == 1
    assert any(s == "warn" and d.startswith("runtime host: ") for s, d in found["subject cx"])
    assert "5 failed, 5 warning(s): the scheduled run would fail or refuse work" in capsys.readouterr().out


def test_keys_set_and_a_live_endpoint_pass(tmp_path, monkeypatch):
    from standins.openai_server import StandInServer

    with StandInServer([], key="k") as server:
        path = config(
            tmp_path,
            monkeypatch,
            [
                {"name": "cc", "adapter": "claude-code", "model": "sonnet", "daily_cost_cap_usd": 5},
                {
                    "name": "local",
                    "adapter": "openai-compatible",
                    "model": "q",
                    "daily_cost_cap_usd": 1,
                    "price": {"input": 0, "output": 0},
                    "settings": {"base_url": server.url, "api_key_env": "LOCAL_KEY"},
                },
            ],
            allow_untrusted_patches_without_sandbox=True,
            alerts=[{"url": "https://hooks.slack.com/services/T000/B000/SECRET", "format": "slack"}],
        )
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
        monkeypatch.setenv("LOCAL_KEY", "k")
        checks = preflight(path)
    assert [c for c in checks if c.status == "fail"] == []
    found = verdicts(checks)
    ((status, detail),) = found["sandbox"]
    assert status == "warn" and "untrusted patches run UNSANDBOXED" in detail
    assert found["subject cc"][0][0] == "ok" and "claude-code" in found["subject cc"][0][1]
    assert any(s == "ok" and "answers" in d for s, d in found["subject local"])
    assert found["alerts"] == [("ok", "slack -> hooks.slack.com")]  # never the webhook's secret path


def test_a_broken_config_stops_at_the_config(tmp_path, monkeypatch):
    path = config(tmp_path, monkeypatch, [], grading_workers=0)
    (check,) = preflight(path)
    assert (check.status, check.what) == ("fail", "config") and "grading_workers" in check.detail
