"""Every adapter end to end on a demo task, and what the adapters do around an agent.

Claude Code here is the real, pinned CLI against the scripted model (as in test_real_clis.py,
which tests each CLI's own flags, output and failures): the tests check what the adapter adds,
retries from a clean workspace, the time limit, the daily cost cap, a Dagster materialization.
They skip outside CI without the CLI cache, saying so. The openai-compatible adapter talks to a
stand-in chat server (`tests/standins/openai_server.py`), since it has no vendor binary to run.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import sys
import time
from pathlib import Path

import pytest
import yaml
from test_real_clis import CACHE, CLAUDE_MODEL, CLAUDE_VERSION, claude_cost, pinned  # tests/ on sys.path

from pipeline.agents import AgentWorld, build_agent, cli_cache, solve_all
from pipeline.agents import scripted_model as sm
from pipeline.agents.claude_code import ClaudeCode, parse
from pipeline.agents.codex import Codex
from pipeline.agents.command import number
from pipeline.agents.process import Finished, backoff, classify_failure
from pipeline.agents.session import Session
from pipeline.agents.workspace import Workspace
from pipeline.config import ConfigError, Subject, load_config

TASK = "demo__calcexpr-001"
DAY = dt.date(2026, 11, 20)
KEY = "sk-standin-0123456789-SECRET"
PRICES = {"gpt-standin": {"input": 1.25, "cached_input": 0.125, "output": 10.0}}
VERSION = f"claude-code {CLAUDE_VERSION} / {CLAUDE_MODEL}"


@pytest.fixture
def claude_cli(monkeypatch) -> cli_cache.Installed:
    """The pinned claude (a skip, under CI a failure, without it), its key, the venv's python3 first."""
    entry = pinned("claude-code", CLAUDE_VERSION)
    monkeypatch.setenv("CANDLEBENCH_CLIS", str(CACHE))
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    return entry


@pytest.fixture
def task(suite):
    return next(t for t in suite.tasks() if t.instance_id == TASK)


def subject(tmp_path: Path, entry: dict, **top) -> Subject:
    path = tmp_path / "tracking.yaml"
    path.write_text(yaml.safe_dump({"trials": 1, "prices": PRICES, "subjects": [entry], **top}))
    return load_config(path).subjects[0]


def claude(tmp_path: Path, url: str, **fields) -> Subject:
    """The real claude on the host (the agent container: test_agent_container.py), on the scripted model."""
    settings = {"cli_version": CLAUDE_VERSION, "base_url": url, "runtime": "host"}
    entry = {"name": "cc", "adapter": "claude-code", "model": CLAUDE_MODEL, "settings": settings}
    return subject(tmp_path, {**entry, "backoff_s": 0.01, "retries": 2, **fields})


def sessions(server: sm.ScriptedModel) -> set[str]:
    """The CLI runs the scripted model served: each has a session of its own."""
    return {e.headers["x-claude-code-session-id"] for e in server.played()}


@functools.cache
def _docker_ready() -> bool:
    """Docker and the sandbox image are here (asked once: a busy daemon answers slowly)."""
    try:
        from pipeline.sandbox.docker import DockerSandbox

        DockerSandbox().fingerprint()  # the demo image is resolved on first need
        return True
    except Exception:  # no daemon, no image, no docker package: grade elsewhere
        return False


def solve(spec: Subject, suite, task, tmp_path: Path, folder: Path | None = None):
    return build_agent(spec, AgentWorld(suite.checkout, tmp_path / "transcripts")).solve(
        task, DAY, 0, folder=folder
    )


# --- the vendor CLIs: what the adapters add ---------------------------------------------------


def test_claude_code_retries_from_a_clean_workspace(claude_cli, suite, grader, task, tmp_path):
    """Overloaded after leaving WIP.md behind, claude gives up; the adapter retries from the base state."""
    clean = {"shell": "test -e WIP.md && echo dirty || echo clean", "expect": "^clean"}
    wip = {"write": {"path": "WIP.md", "content": "half done\n"}}
    overloaded = sm.parse_script([clean, wip, {"error": 529, "retry": False}], "overloaded")
    recovered = sm.parse_script([clean, {"patch": task.patch}, {"finish": "Fixed."}], "recovered")
    with sm.ScriptedModel(overloaded) as server:
        agent = build_agent(
            claude(tmp_path, server.url), AgentWorld(suite.checkout, tmp_path / "transcripts")
        )

        def recover(delay: float) -> None:  # the back-off: by the retry, a new conversation, it is over
            del delay
            server.scripts[:] = [recovered]

        agent.sleep = recover
        attempt = agent.solve(task, DAY, 0)
    assert (attempt.exit_class, attempt.tries) == ("submitted", 2), attempt.detail
    assert server.mismatches == []  # the retry's first command found no WIP.md
    assert [e.script for e in server.played()][-1] == "recovered" and len(sessions(server)) == 2
    assert "WIP.md" not in attempt.patch and grader.grade(task, attempt.patch, trusted=True).resolved
    assert attempt.cost_usd == pytest.approx(claude_cost(server.usage()), abs=2e-6)  # both runs count
    assert "retry 1 of 2" in Path(attempt.transcript).read_text()


def test_a_retry_keeps_ignored_dependencies(suite, task, tmp_path):
    """Reset for a retry drops the agent's files but keeps ignored ones (a Pro /app's node_modules)."""

    def checkout(task, dest):
        suite.checkout(task, dest)
        (dest / "node_modules" / "left-pad").mkdir(parents=True)
        (dest / "node_modules" / "left-pad" / "index.js").write_text("module.exports = 1;\n")
        with (dest / ".git" / "info" / "exclude").open("a") as exclude:
            exclude.write("node_modules/\n")

    workspace = Workspace.create(tmp_path / "attempt", task, checkout)
    (workspace.path / "WIP.md").write_text("half done\n")
    (workspace.path / "calcexpr" / "tokens.py").write_text("broken\n")
    workspace.reset()
    assert (workspace.path / "node_modules" / "left-pad" / "index.js").exists()
    assert not (workspace.path / "WIP.md").exists() and workspace.diff() == ""


def running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_claude_code_timeout(claude_cli, suite, task, tmp_path):
    """Killed at the time limit with everything it started: claude runs each command in a session
    of its own, out of reach of a kill of its process group."""
    script = sm.parse_script([{"shell": "echo $$ > sleeper.pid && exec sleep 600"}, {"finish": "never"}])
    with sm.ScriptedModel(script) as server:
        spec = claude(tmp_path, server.url, timeout_s=6)
        attempt = solve(spec, suite, task, tmp_path, folder=tmp_path / "kept")
    assert attempt.exit_class == "timeout" and 6 <= attempt.duration_s < 15, attempt.detail
    sleeper = int((tmp_path / "kept" / "workspace" / "sleeper.pid").read_text())
    deadline = time.monotonic() + 5
    while running(sleeper) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running(sleeper)


def test_claude_code_that_dies_without_a_result_event():
    """A crash before the result event (the real CLI cannot be made to crash): classed from stderr."""
    crash = parse(Finished(1, False, "", "", "TypeError: Cannot read properties of undefined\n"), None)
    assert (crash.exit_class, crash.transient) == ("agent_error", False)
    assert crash.detail == "no result event (exit 1): TypeError: Cannot read properties of undefined"
    offline = parse(Finished(1, False, "", "", "API Error: Connection error."), None)
    assert (offline.exit_class, offline.transient) == ("api_error", True)


@pytest.mark.parametrize(
    "prompt, via_stdin",
    [("Fix the tokenizer.\n", False), ("-2 ^ 2 parses wrong\n", True), ("x" * 100_001, True)],
)
def test_prompts_too_long_for_an_argument_or_like_a_flag_go_through_stdin(tmp_path, prompt, via_stdin):
    """Both CLIs read such a prompt from stdin: test_real_clis runs each with one."""
    cc = ClaudeCode(subject(tmp_path, {"name": "cc", "adapter": "claude-code", "model": "m"}))
    cx = Codex(subject(tmp_path, {"name": "cx", "adapter": "codex", "model": "gpt-standin"}))
    workspace = Workspace(tmp_path, tmp_path / "workspace", tmp_path / "home", "HEAD")
    cc_argv, cc_stdin = cc.command(prompt)
    cx_argv, cx_stdin = cx.command(Session(prompt, workspace, None, 60))
    assert cc_stdin == cx_stdin == (prompt if via_stdin else None)
    assert (prompt in cc_argv, cx_argv[-1]) == ((False, "-") if via_stdin else (True, prompt))


# --- openai-compatible ------------------------------------------------------------------------


def bash(command: str) -> str:
    return f"THOUGHT: next step.\n\n```bash\n{command}\n```\n"


def openai(tmp_path: Path, url: str, **settings) -> Subject:
    return subject(
        tmp_path,
        {
            "name": "oa",
            "adapter": "openai-compatible",
            "model": "gpt-standin",
            "retries": 2,
            "backoff_s": 0.01,
            "settings": {"base_url": url, "api_key_env": "STANDIN_OPENAI_KEY", **settings},
        },
    )


def test_openai_compatible_bash_loop(suite, grader, task, tmp_path, monkeypatch):
    from standins.openai_server import StandInServer

    monkeypatch.setenv("STANDIN_OPENAI_KEY", KEY)
    script = [
        bash("cat calcexpr/tokens.py"),
        "Let me think without a command first.",
        bash(f"git apply <<'EOF'\n{task.patch}EOF"),
        bash(
            "python -c \"open('NOTES.md', 'w').write('leading dots\\n')\" "
            '&& echo "key=${STANDIN_OPENAI_KEY:-unset}"'
        ),
        bash("echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"),
    ]
    with StandInServer(script, key=KEY, failures=[429, 503]) as server:
        attempt = solve(openai(tmp_path, server.url), suite, task, tmp_path)
    assert attempt.exit_class == "submitted", attempt.detail
    assert grader.grade(task, attempt.patch, trusted=True).outcome == "resolved"
    assert "+++ b/NOTES.md" in attempt.patch and "+leading dots" in attempt.patch
    assert server.statuses == [429, 503, 200, 200, 200, 200, 200]  # two transient failures, retried
    assert attempt.turns == 5
    assert attempt.input_tokens == sum(1000 + 100 * n for n in range(5))
    assert (attempt.output_tokens, attempt.cached_tokens) == (250, 3200)
    fresh = attempt.input_tokens - 3200
    assert attempt.cost_usd == pytest.approx((fresh * 1.25 + 3200 * 0.125 + 250 * 10.0) / 1e6)
    assert attempt.agent_version == "bash-loop/1 / gpt-standin"
    # behaviour from the loop's transcript: cat (a read), git apply (the edit), the python one-liner
    # (neither, to the heuristics); the submission is no command; the loop shows no thinking apart
    behaviour = (attempt.tool_calls, attempt.shell_commands, attempt.test_runs, attempt.edits)
    assert behaviour == (3, 3, 0, 1)
    assert (attempt.files_read_before_first_edit, attempt.thinking_chars) == (1, None)
    messages = server.requests[-1]["body"]["messages"]
    assert "_NUMBER = re.compile" in messages[3]["content"]  # `cat` ran in the workspace
    assert "exactly one ```bash code block" in messages[5]["content"]
    assert "key=unset" in messages[9]["content"]  # commands never see the key
    assert server.requests[-1]["headers"]["authorization"] == f"Bearer {KEY}"
    transcript = Path(attempt.transcript).read_text()
    assert KEY not in transcript and KEY not in json.dumps(attempt.record())


def test_openai_compatible_limits_and_errors(suite, task, tmp_path, monkeypatch):
    from standins.openai_server import StandInServer

    monkeypatch.setenv("STANDIN_OPENAI_KEY", KEY)
    with StandInServer([bash("sleep 5"), bash("ls")]) as server:
        spec = openai(tmp_path, server.url, max_turns=3, command_timeout_s=0.3)
        attempt = solve(spec, suite, task, tmp_path)
    assert attempt.exit_class == "budget_exhausted" and attempt.turns == 3
    assert "<returncode>timeout</returncode>" in server.requests[1]["body"]["messages"][3]["content"]
    with StandInServer([bash("ls")], failures=[500] * 5) as server:
        attempt = solve(openai(tmp_path, server.url), suite, task, tmp_path)
    assert attempt.exit_class == "api_error" and server.statuses == [500, 500, 500]
    assert "HTTP 500" in attempt.detail
    with StandInServer([bash("ls")], key="another key") as server:
        attempt = solve(openai(tmp_path, server.url), suite, task, tmp_path)
    assert attempt.exit_class == "api_error" and server.statuses == [401]  # not transient: no retry
    with StandInServer([bash("ls")]) as server:
        attempt = solve(openai(tmp_path, server.url, max_budget_usd=0.002), suite, task, tmp_path)
    assert attempt.exit_class == "budget_exhausted" and attempt.cost_usd >= 0.002


def test_openai_compatible_commands_in_docker(suite, grader, task, tmp_path):
    """With `sandbox: docker` every command runs in a fresh container: the workspace, no network."""
    from standins.openai_server import StandInServer

    if not _docker_ready():
        pytest.skip("no Docker daemon or sandbox image")
    script = [
        bash("id -u && git status --short && echo done"),
        bash(f"git apply <<'EOF'\n{task.patch}EOF"),
        bash("python -c 'import urllib.request as u; u.urlopen(\"http://1.1.1.1\", timeout=3)'"),
        bash("git config core.fsmonitor 'touch /tmp/pwned'; echo config-exit=$?"),
        bash("echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"),
    ]
    with StandInServer(script) as server:
        attempt = solve(
            subject(
                tmp_path,
                {
                    "name": "oa",
                    "adapter": "openai-compatible",
                    "model": "gpt-standin",
                    "settings": {"base_url": server.url, "sandbox": "docker"},
                },
            ),
            suite,
            task,
            tmp_path,
        )
    assert attempt.exit_class == "submitted", attempt.detail
    assert grader.grade(task, attempt.patch, trusted=True).outcome == "resolved"
    observations = [m["content"] for m in server.requests[-1]["body"]["messages"] if m["role"] == "user"]
    assert "<output>\n1000\ndone\n" in observations[1]  # not root; git works on the self-contained tree
    assert "Network is unreachable" in observations[3]
    # .git is read-only in the sandbox: the host's later `git add`/`git diff` meet no agent config
    assert "config-exit=" in observations[4] and "config-exit=0" not in observations[4]


# --- command ----------------------------------------------------------------------------------


def test_command_adapter(suite, grader, task, tmp_path, monkeypatch):
    (tmp_path / "fix.patch").write_text(task.patch)
    monkeypatch.setenv("STANDIN_PATCH", str(tmp_path / "fix.patch"))
    template = (
        'bash -c \'grep -q "leading dot" "$0" && git apply "$STANDIN_PATCH" && '
        'echo "model=$1" && echo "Tokens: 2.1k sent, 345 received. Cost: \\$0.05 session." '
        "&& echo turns=4' {prompt_file} {model}"
    )
    spec = subject(
        tmp_path,
        {
            "name": "cmd",
            "adapter": "command",
            "model": "local-model",
            "settings": {
                "template": template,
                "env": ["STANDIN_PATCH"],
                "cost_regex": r"Cost: \$([\d.]+) session",
                "input_tokens_regex": r"Tokens: ([\d.]+k?) sent",
                "output_tokens_regex": r"([\d.]+k?) received",
                "turns_regex": r"turns=(\d+)",
            },
        },
    )
    attempt = solve(spec, suite, task, tmp_path)
    assert attempt.exit_class == "submitted", attempt.detail
    assert grader.grade(task, attempt.patch, trusted=True).outcome == "resolved"
    assert (attempt.cost_usd, attempt.input_tokens, attempt.output_tokens) == (0.05, 2100, 345)
    assert attempt.turns == 4
    assert attempt.agent_version == "bash / local-model"
    assert "model=local-model" in Path(attempt.transcript).read_text()
    failing = subject(
        tmp_path,
        {
            "name": "cmd",
            "adapter": "command",
            "settings": {
                "template": "bash -c 'echo \"Error: 503 Service Unavailable\" >&2; exit 1' {prompt}"
            },
            "retries": 0,
        },
    )
    attempt = solve(failing, suite, task, tmp_path)
    assert attempt.exit_class == "api_error" and attempt.patch == ""
    assert number("1,234") == 1234 and number("1.5M") == 1_500_000
    background = subject(
        tmp_path,
        {
            "name": "cmd",
            "adapter": "command",
            "timeout_s": 20,
            "settings": {"template": "bash -c 'sleep 30 & echo started; test -n \"$0\"' {prompt}"},
        },
    )
    attempt = solve(background, suite, task, tmp_path)  # what it left running is killed, not waited for
    assert attempt.exit_class == "submitted" and attempt.duration_s < 10


# --- replay -----------------------------------------------------------------------------------


def test_replay_reads_every_predictions_layout(suite, task, tmp_path):
    folder = tmp_path / "preds"
    (folder / "2026-11-21").mkdir(parents=True)
    row = {"instance_id": TASK, "model_name_or_path": "agent-v1", "model_patch": task.patch}
    (folder / "2026-11-19.jsonl").write_text(json.dumps(row) + "\n" + json.dumps({**row, "model_patch": ""}))
    (folder / "2026-11-20.json").write_text(json.dumps({TASK: {**row, "model_name_or_path": "agent-v2"}}))
    (folder / "2026-11-21" / "all_preds.json").write_text(
        json.dumps([{**row, "model_name_or_path": "agent-v3"}])
    )
    spec = subject(tmp_path, {"name": "rp", "adapter": "replay", "settings": {"predictions": "preds"}})
    agent = build_agent(spec, AgentWorld(suite.checkout, tmp_path / "transcripts"))
    assert [agent.version(dt.date(2026, 11, d)) for d in (18, 19, 20, 21, 25)] == [
        "no predictions yet",
        "agent-v1",
        "agent-v2",
        "agent-v3",
        "agent-v3",
    ]
    first, second, third = (agent.solve(task, dt.date(2026, 11, 19), trial) for trial in range(3))
    assert first.patch == task.patch and first.exit_class == "submitted" and first.agent_version == "agent-v1"
    assert second.patch == "" and second.exit_class == "submitted"  # an empty prediction is still one
    assert third.exit_class == "skipped"  # no third prediction recorded that day
    other = next(t for t in suite.tasks() if t.instance_id != TASK)
    missing = agent.solve(other, dt.date(2026, 11, 20), 0)
    assert missing.exit_class == "agent_error" and missing.patch == "" and "no prediction" in missing.detail
    with pytest.raises(FileNotFoundError, match="no predictions for 2026-11-22"):
        agent.solve(task, dt.date(2026, 11, 22), 0)
    single = subject(
        tmp_path, {"name": "rp", "adapter": "replay", "settings": {"predictions": "preds/2026-11-20.json"}}
    )
    agent = build_agent(single, AgentWorld(suite.checkout, tmp_path / "transcripts"))
    assert agent.solve(task, dt.date(2025, 1, 1), 0).agent_version == "agent-v2"


# --- budgets, config, shared pieces -----------------------------------------------------------


def test_daily_cost_cap_skips_the_rest(claude_cli, suite, tmp_path):
    # $0.06 a response, two responses an attempt: the second attempt passes the $0.2 cap
    script = sm.parse_script(
        {
            "usage": {"input_tokens": 20_000, "output_tokens": 0},
            "steps": [{"shell": "true"}, {"finish": "ok"}],
        }
    )
    tasks = suite.tasks()[:2]
    with sm.ScriptedModel(script) as server:
        agent = build_agent(
            claude(tmp_path, server.url), AgentWorld(suite.checkout, tmp_path / "transcripts")
        )
        attempts = solve_all(
            agent, [(t, trial) for trial in range(2) for t in tasks], DAY, daily_cost_cap_usd=0.2
        )
    assert [a.exit_class for a in attempts] == ["submitted", "submitted", "skipped", "skipped"]
    assert len(sessions(server)) == 2  # the CLI ran twice
    first, second, skipped = attempts[:3]
    assert first.cost_usd + second.cost_usd == pytest.approx(claude_cost(server.usage()), abs=2e-6)
    assert first.cost_usd < 0.2 <= first.cost_usd + second.cost_usd
    assert skipped.patch == "" and skipped.cost_usd == 0 and "cost cap $0.2" in skipped.detail
    assert skipped.agent_version == VERSION
    # an attempt without a folder keeps its transcript under the subject's and the day's partition
    kept = tmp_path / "transcripts" / "subject=cc" / f"date={DAY}" / f"{tasks[0].instance_id}.trial0.log"
    assert Path(first.transcript) == kept and '"type":"result"' in kept.read_text()


def test_retry_backoff_and_failure_classes():
    assert [backoff(n, 2.0) for n in (1, 2, 3, 4)] == [2, 4, 8, 16] and backoff(20, 2.0) == 300
    assert classify_failure("API Error: 529 overloaded") == ("api_error", True)
    assert classify_failure("HTTP 429: rate limit exceeded") == ("api_error", True)
    assert classify_failure("Invalid API key · Please run /login") == ("api_error", False)
    assert classify_failure("TypeError: x is undefined") == ("agent_error", False)


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"name": "a", "adapter": "claude-code"}, "subject a: missing field 'model'"),
        (
            {"name": "a", "adapter": "claude-code", "model": "m", "settings": {"max_turn": 3}},
            "subject a: field 'settings.max_turn' is not a claude-code setting",
        ),
        (
            {"name": "a", "adapter": "claude-code", "model": "m", "settings": {"permission_mode": "yolo"}},
            "subject a: field 'settings.permission_mode' must be one of",
        ),
        (
            {"name": "a", "adapter": "claude-code", "model": "m", "settings": {"max_turns": "ten"}},
            "subject a: field 'settings.max_turns' must be int",
        ),
        ({"name": "a", "adapter": "codex", "model": "unpriced"}, "subject a: field 'price': no price"),
        (
            {"name": "a", "adapter": "openai-compatible", "model": "gpt-standin"},
            "subject a: missing field 'settings.base_url'",
        ),
        (
            {"name": "a", "adapter": "command", "settings": {"template": "agent --go"}},
            "subject a: field 'settings.template' must pass the task",
        ),
        (
            {"name": "a", "adapter": "command", "settings": {"template": "a {prompt}", "cost_regex": "("}},
            "subject a: field 'settings.cost_regex' is not a valid regex",
        ),
        (
            {"name": "a", "adapter": "replay", "settings": {"predictions": "nowhere"}},
            "subject a: field 'settings.predictions'",
        ),
        (
            {"name": "a", "adapter": "simulated", "scenario": "scenario.yaml", "trials": 0},
            "subject a: field 'trials' must be at least 1",
        ),
        (
            {"name": "a", "adapter": "simulated", "scenario": "scenario.yaml", "daily_cost_cap": 5},
            "subject a: unknown field 'daily_cost_cap'",
        ),
        (
            {"name": "a", "adapter": "codex", "model": "m", "price": {"input": 1}},
            "subject a: field 'price': missing field 'output'",
        ),
        (
            {"name": "a", "adapter": "claude-code", "model": "m", "settings": {"env": ["NOT-A-NAME"]}},
            "subject a: field 'settings.env'",
        ),
        (
            {"name": "claude-code/opus", "adapter": "simulated", "scenario": "scenario.yaml"},
            "subject claude-code/opus: field 'name' 'claude-code/opus' must be 1-64 letters",
        ),  # hive paths read it back as "claude-code"
    ],
)
def test_invalid_subject_fails_at_load_naming_subject_and_field(tmp_path, entry, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("$", r"\$")):
        subject(tmp_path, entry)


def test_subject_fields_and_defaults(tmp_path):
    spec = subject(
        tmp_path,
        {
            "name": "cx",
            "adapter": "codex",
            "model": "gpt-standin",
            "trials": 5,
            "timeout_s": 600,
            "daily_cost_cap_usd": 20,
            "concurrency": 2,
        },
        trials=3,
    )
    assert (spec.trials, spec.timeout_s, spec.daily_cost_cap_usd, spec.concurrency) == (5, 600.0, 20.0, 2)
    assert spec.price.cost(1_000_000, 1_000_000, 0) == pytest.approx(11.25)
    assert spec.settings["sandbox"] == "workspace-write" and spec.settings["max_turns"] is None
    assert (
        subject(
            tmp_path, {"name": "sim-codex", "adapter": "simulated", "scenario": "scenario.yaml"}, trials=3
        ).trials
        == 3
    )


# --- through Dagster --------------------------------------------------------------------------


def test_claude_code_through_dagster(claude_cli, suite, tmp_path, monkeypatch):
    """A claude-code subject, with a daily cost cap, through a real materialization: the first
    attempt's cost reaches the cap, the second is skipped (the agent container: test_agent_container.py)."""
    import dagster as dg

    from assets.grading import agent_attempts
    from pipeline.definitions import defs
    from pipeline.orchestration.resources import TrackerResource
    from pipeline.store.warehouse import Warehouse

    docker = _docker_ready()
    home = tmp_path / "home"
    config = tmp_path / "tracking.yaml"
    with sm.ScriptedModel(sm.suite_scripts(suite.tasks())) as server:
        config.write_text(
            yaml.safe_dump(
                {
                    "suite": "demo",
                    "sample": {"size": 2, "seed": 1},
                    "trials": 1,
                    "sandbox": "docker" if docker else "process",
                    "subjects": [
                        {
                            "name": "claude-real",
                            "adapter": "claude-code",
                            "model": CLAUDE_MODEL,
                            "daily_cost_cap_usd": 0.001,
                            "settings": {
                                "cli_version": CLAUDE_VERSION,
                                "base_url": server.url,
                                "runtime": "host",
                            },
                        }
                    ],
                }
            )
        )
        monkeypatch.setenv("CANDLEBENCH_HOME", str(home))
        monkeypatch.setenv("CANDLEBENCH_CONFIG", str(config))
        with dg.instance_for_test() as instance:
            instance.add_dynamic_partitions("subject", ["claude-real"])
            key = dg.MultiPartitionKey({"date": DAY.isoformat(), "subject": "claude-real"})
            if docker:  # untrusted patches are graded only in Docker
                job = defs.resolve_job_def("evaluation_job")
                result = job.execute_in_process(instance=instance, partition_key=key)
            else:
                result = dg.materialize(
                    [agent_attempts],
                    instance=instance,
                    partition_key=key,
                    resources={"tracker": TrackerResource()},
                )
    assert result.success
    warehouse = Warehouse(home)
    attempts = warehouse.lake.read_partition("attempts", subject="claude-real", date=DAY.isoformat())
    ran, skipped = sorted(attempts.to_dicts(), key=lambda r: r["exit_class"] == "skipped")
    assert (ran["exit_class"], skipped["exit_class"]) == ("submitted", "skipped"), ran["detail"]
    assert server.mismatches == [] and len(sessions(server)) == 1
    played, used = server.played(), server.usage()
    assert ran["cost_usd"] == pytest.approx(claude_cost(used), abs=1e-6) and ran["turns"] == len(played)
    assert ran["input_tokens"] == used.input_tokens + used.cache_read + used.cache_write
    assert (ran["cached_tokens"], ran["output_tokens"]) == (used.cache_read, used.output_tokens)
    assert ran["agent_version"] == VERSION and ran["agent_sha256"] == claude_cli.sha256
    assert Path(ran["transcript"]).exists() and ran["patch"].startswith("diff --git")
    assert skipped["cost_usd"] == 0 and "daily cost cap $0.001 reached" in skipped["detail"]
    # behaviour read from the real transcript: what the script played; none for the skipped one
    calls = [e for e in played if e.tool]
    assert (ran["tool_calls"], ran["test_runs"]) == (len(calls), sum(e.action == "test" for e in played))
    assert ran["test_runs"] >= 1 and skipped["tool_calls"] is None
    if docker:
        evaluations = warehouse.lake.read_partition(
            "evaluations", subject="claude-real", date=DAY.isoformat()
        )
        graded = dict(zip(evaluations["attempt_id"], evaluations["outcome"], strict=True))
        assert graded[ran["attempt_id"]] == "resolved"
        (skip,) = evaluations.filter(evaluations["outcome"] == "skipped").to_dicts()
        assert skip["reason"].startswith("not launched: daily cost cap $0.001 reached")
