"""`candlebench attempt`: one attempt outside Dagster, its workspace, transcript and patch kept."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.cli import main

STANDINS = Path(__file__).parent / "standins"
TASK = "demo__calcexpr-001"


@pytest.fixture
def config(suite, tmp_path, monkeypatch) -> Path:
    """A tracking config with a claude-code subject, the stand-in first on PATH, a fresh home."""
    plan = tmp_path / "plan.json"
    plan.write_text(
        json.dumps({hashlib.sha256(t.prompt().encode()).hexdigest(): t.patch for t in suite.tasks()})
    )
    monkeypatch.setenv("PATH", f"{STANDINS}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("STANDIN_PLAN", str(plan))
    monkeypatch.setenv("CANDLEBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CANDLEBENCH_CONFIG", raising=False)
    path = tmp_path / "tracking.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "trials": 1,
                "subjects": [
                    {
                        "name": "claude-code-sonnet",
                        "adapter": "claude-code",
                        "model": "sonnet",
                        "settings": {"env": ["STANDIN_PLAN"], "max_turns": 30},
                    }
                ],
            }
        )
    )
    return path


def test_attempt_keeps_workspace_transcript_and_patch(config, tmp_path, capsys):
    out = tmp_path / "try"
    code = main(
        [
            "attempt",
            "--subject",
            "claude-code-sonnet",
            "--task",
            TASK,
            "--out",
            str(out),
            "--config",
            str(config),
            "--date",
            "2026-11-20",
        ]
    )
    assert code == 0
    record = json.loads(capsys.readouterr().out)
    assert record["exit_class"] == "submitted" and record["date"] == "2026-11-20"
    assert record["agent_version"] == "claude-code 2.1.0 / sonnet" and record["turns"] == 6
    assert record["cost_usd"] == pytest.approx(0.1234) and record["input_tokens"] == 6500
    assert record["transcript"] == str(out / "transcript.log")
    assert '"subtype": "success"' in (out / "transcript.log").read_text()
    assert (out / "patch.diff").read_text() == record["patch"] != ""
    assert json.loads((out / "attempt.json").read_text()) == record
    assert r"|\.\d+)" in (out / "workspace" / "calcexpr" / "tokens.py").read_text()  # the edited tree
    assert (out / "prompt.md").read_text().startswith("Numbers written with a leading dot")


def test_attempt_errors_name_the_problem(config, tmp_path, capsys):
    args = ["attempt", "--task", TASK, "--out", str(tmp_path / "try"), "--config", str(config)]
    assert main([*args, "--subject", "nope"]) == 2
    assert "subject 'nope' is not in" in capsys.readouterr().err
    assert (
        main(
            [
                "attempt",
                "--subject",
                "claude-code-sonnet",
                "--task",
                "demo__nope-001",
                "--out",
                str(tmp_path / "try"),
                "--config",
                str(config),
            ]
        )
        == 2
    )
    assert "task 'demo__nope-001' is not in suite 'demo'" in capsys.readouterr().err
    assert main([*args, "--subject", "claude-code-sonnet"]) == 0
    capsys.readouterr()
    assert main([*args, "--subject", "claude-code-sonnet"]) == 2  # never overwrite a kept workspace
    assert "already exists" in capsys.readouterr().err


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
