"""`candlebench attempt`: one attempt outside Dagster, its workspace, transcript and patch kept.

The claude-code subject is the real, pinned CLI on the host against the scripted model (skipped
outside CI without the CLI cache, as in test_real_clis.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_real_clis import CACHE, CLAUDE_MODEL, CLAUDE_VERSION, KEY, claude_cost, pinned  # tests/ on sys.path

from pipeline.agents import scripted_model as sm
from pipeline.cli import main

TASK = "demo__calcexpr-001"


def config(tmp_path: Path, monkeypatch, url: str) -> Path:
    """A tracking config with a claude-code subject on the scripted model at `url`, a fresh home."""
    monkeypatch.setenv("CANDLEBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CANDLEBENCH_CONFIG", raising=False)
    settings = {"cli_version": CLAUDE_VERSION, "base_url": url, "runtime": "host", "max_turns": 30}
    subject = {
        "name": "claude-code-sonnet",
        "adapter": "claude-code",
        "model": CLAUDE_MODEL,
        "settings": settings,
    }
    path = tmp_path / "tracking.yaml"
    path.write_text(yaml.safe_dump({"trials": 1, "subjects": [subject]}))
    return path


def test_attempt_keeps_workspace_transcript_and_patch(suite, tmp_path, monkeypatch, capsys):
    entry = pinned("claude-code", CLAUDE_VERSION)
    monkeypatch.setenv("CANDLEBENCH_CLIS", str(CACHE))
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    out = tmp_path / "try"
    with sm.ScriptedModel(sm.suite_scripts(suite.tasks())) as server:
        args = ["attempt", "--subject", "claude-code-sonnet", "--task", TASK, "--out", str(out)]
        args += ["--config", str(config(tmp_path, monkeypatch, server.url)), "--date", "2026-11-20"]
        assert main(args) == 0
        record = json.loads(capsys.readouterr().out)
        assert main(args) == 2  # never overwrite a kept workspace
        assert "already exists" in capsys.readouterr().err
    assert record["exit_class"] == "submitted" and record["date"] == "2026-11-20"
    assert server.mismatches == [] and record["turns"] == len(server.played())
    assert record["agent_version"] == f"claude-code {CLAUDE_VERSION} / {CLAUDE_MODEL}"
    assert record["agent_sha256"] == entry.sha256
    assert record["cost_usd"] == pytest.approx(claude_cost(server.usage()), abs=1e-6)
    assert record["transcript"] == str(out / "transcript.log")
    assert '"subtype":"success"' in (out / "transcript.log").read_text()
    assert (out / "patch.diff").read_text() == record["patch"] != ""
    assert json.loads((out / "attempt.json").read_text()) == record
    assert r"|\.\d+)" in (out / "workspace" / "calcexpr" / "tokens.py").read_text()  # the edited tree
    assert (out / "prompt.md").read_text().startswith("Numbers written with a leading dot")


def test_attempt_errors_name_the_problem(tmp_path, monkeypatch, capsys):
    path = config(tmp_path, monkeypatch, "http://127.0.0.1:9")  # never asked: nothing runs
    args = ["attempt", "--out", str(tmp_path / "try"), "--config", str(path)]
    assert main([*args, "--task", TASK, "--subject", "nope"]) == 2
    assert "subject 'nope' is not in" in capsys.readouterr().err
    assert main([*args, "--task", "demo__nope-001", "--subject", "claude-code-sonnet"]) == 2
    assert "task 'demo__nope-001' is not in suite 'demo'" in capsys.readouterr().err


def test_attempt_command_line_with_the_default_simulated_config(tmp_path):
    """The installed entry point, without keys: the demo's simulated subjects work as they are."""
    env = {**os.environ, "CANDLEBENCH_HOME": str(tmp_path / "home")}
    env.pop("CANDLEBENCH_CONFIG", None)
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "candlebench"),
            "attempt",
            "--subject",
            "sim-claude-code",
            "--task",
            TASK,
            "--out",
            str(tmp_path / "try"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["subject"] == "sim-claude-code" and record["exit_class"] == "submitted"
    assert (tmp_path / "try" / "patch.diff").read_text() == record["patch"]
